"""Equinox Vision Transformers, the MAE decoder, CLIP text encoders and timm weight import.

Public API (flat, as in Equinox):
    ViTConfig, PRESETS, get_config, ViT, ViTOutput, create, interpolate_pos_embed, weight_decay_mask,
    random_masking, patchify, unpatchify, MAEDecoder, create_mae_decoder, MAE_DECODER_PRESETS,
    TextConfig, TextEncoder, TextOutput, TEXT_PRESETS, create_text, tokenize, from_timm, sincos_2d,
    encoder_files, load_pretrained, WEIGHTS_FILE, CONFIG_FILE.
"""

from .config import ViTConfig
from .mae_decoder import MAE_DECODER_PRESETS, MAEDecoder, create_mae_decoder
from .masking import patchify, random_masking, unpatchify
from .pos_embed import sincos_2d
from .presets import PRESETS, get_config
from .serialisation import CONFIG_FILE, WEIGHTS_FILE, encoder_files, load_pretrained
from .text import TEXT_PRESETS, TextConfig, TextEncoder, TextOutput, create_text
from .timm_import import from_timm
from .tokenizer import MAX_CAPTION_CHARS, VOCAB_SIZE, tokenize
from .vit import ViT, ViTOutput, create, interpolate_pos_embed
from .weight_decay import weight_decay_mask

__all__ = [
    "CONFIG_FILE",
    "MAE_DECODER_PRESETS",
    "MAX_CAPTION_CHARS",
    "PRESETS",
    "TEXT_PRESETS",
    "VOCAB_SIZE",
    "WEIGHTS_FILE",
    "MAEDecoder",
    "TextConfig",
    "TextEncoder",
    "TextOutput",
    "ViT",
    "ViTConfig",
    "ViTOutput",
    "create",
    "create_mae_decoder",
    "create_text",
    "encoder_files",
    "from_timm",
    "get_config",
    "interpolate_pos_embed",
    "load_pretrained",
    "patchify",
    "random_masking",
    "sincos_2d",
    "tokenize",
    "unpatchify",
    "weight_decay_mask",
]

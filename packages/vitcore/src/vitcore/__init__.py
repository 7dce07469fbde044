"""Equinox image backbones (Vision Transformers, NFNets), the MAE decoder, CLIP text encoders and timm weight
import.

Public API (flat, as in Equinox):
    backbones: AbstractBackbone, FeatureInfo, create, build, family_of, BackboneFamily, BACKBONE_FAMILIES, PRESETS,
        VIT_PRESETS, NFNET_PRESETS, get_config, weight_decay_mask;
    ViT: ViTConfig, ViT, ViTOutput, interpolate_pos_embed, from_timm, image_hw;
    input normalisation: normalise_images, IMAGENET_MEAN, IMAGENET_STD (and every backbone's `normalise`);
    NFNet: NFNetConfig, NFNet, NFNetOutput, standardize_weight;
    MAE: MAEDecoderConfig, MAEDecoder, create_mae_decoder, MAE_DECODER_PRESETS, random_masking, patchify,
        unpatchify, sincos_2d;
    text: TextConfig, TextEncoder, TextOutput, TEXT_PRESETS, create_text, tokenize, MAX_CAPTION_CHARS, VOCAB_SIZE,
        WordPieceVocab, load_vocab, wordpiece (a real vocab.txt, when the user has one);
    layers: Linear, LayerNorm, trunc_normal;
    files: encoder_files, load_pretrained, ENCODER_WEIGHTS_FILE, ENCODER_CONFIG_FILE;
    memory: example_memory_floor (a lower bound of one example's memory in a training step).
"""

from .backbone import AbstractBackbone, FeatureInfo
from .config import ViTConfig, image_hw
from .factory import BACKBONE_FAMILIES, BackboneFamily, build, create, family_of
from .linear import LayerNorm, Linear, trunc_normal
from .mae_decoder import MAE_DECODER_PRESETS, MAEDecoder, MAEDecoderConfig, create_mae_decoder
from .masking import patchify, random_masking, unpatchify
from .memory_floor import example_memory_floor
from .nfnet import NFNet, NFNetOutput
from .nfnet_config import NFNetConfig
from .nfnet_presets import NFNET_PRESETS
from .normalisation import IMAGENET_MEAN, IMAGENET_STD, normalise_images
from .pos_embed import sincos_2d
from .presets import PRESETS, VIT_PRESETS, get_config
from .serialisation import CONFIG_FILE as ENCODER_CONFIG_FILE
from .serialisation import WEIGHTS_FILE as ENCODER_WEIGHTS_FILE
from .serialisation import encoder_files, load_pretrained
from .stack import stacked_axes
from .text import TEXT_PRESETS, TextConfig, TextEncoder, TextOutput, create_text
from .timm_import import from_timm
from .tokenizer import MAX_CAPTION_CHARS, VOCAB_SIZE, tokenize
from .vit import ViT, ViTOutput, interpolate_pos_embed
from .weight_decay import weight_decay_mask
from .wordpiece import WordPieceVocab, load_vocab, wordpiece
from .ws_conv import standardize_weight

# The one place the version is written (pyproject.toml reads it: [tool.setuptools.dynamic]).
__version__ = "0.2.0"

__all__ = [
    "BACKBONE_FAMILIES",
    "ENCODER_CONFIG_FILE",
    "ENCODER_WEIGHTS_FILE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MAE_DECODER_PRESETS",
    "MAX_CAPTION_CHARS",
    "NFNET_PRESETS",
    "PRESETS",
    "TEXT_PRESETS",
    "VIT_PRESETS",
    "VOCAB_SIZE",
    "AbstractBackbone",
    "BackboneFamily",
    "FeatureInfo",
    "LayerNorm",
    "Linear",
    "MAEDecoder",
    "MAEDecoderConfig",
    "NFNet",
    "NFNetConfig",
    "NFNetOutput",
    "TextConfig",
    "TextEncoder",
    "TextOutput",
    "ViT",
    "ViTConfig",
    "example_memory_floor",
    "ViTOutput",
    "WordPieceVocab",
    "build",
    "create",
    "create_mae_decoder",
    "create_text",
    "encoder_files",
    "family_of",
    "from_timm",
    "get_config",
    "image_hw",
    "interpolate_pos_embed",
    "load_pretrained",
    "load_vocab",
    "normalise_images",
    "patchify",
    "random_masking",
    "sincos_2d",
    "stacked_axes",
    "standardize_weight",
    "tokenize",
    "trunc_normal",
    "unpatchify",
    "weight_decay_mask",
    "wordpiece",
]

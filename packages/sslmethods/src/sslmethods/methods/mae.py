"""MAE: masked autoencoding with a ViT encoder on the kept patches and MAE's lightweight decoder.

He et al., "Masked Autoencoders Are Scalable Vision Learners" (2021); canonical code facebookresearch/mae
``models_mae.py`` (``random_masking``, ``forward_encoder``, ``forward_decoder``, ``forward_loss``). The study
(Koppula et al. 2022, A.3) sweeps the mask ratio over 0.55/0.65/0.75/0.85 (0.75 default) and uses the 8-layer
x 512 decoder or a 1-layer "tiny" one; the loss is on the masked patches with per-patch normalised pixels::

    method = MAE(backbone=vitcore.get_config("vit-b16"), total_steps=250_000, mask_ratio=0.75)
    model, state = method.init(key=key)            # model.encoder: vitcore.ViT, model.decoder: MAEDecoder
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import equinox as eqx
import flopmeter
import jax
import jax.numpy as jnp
import vitcore
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..blocks.augment import mae_views, make_views
from ..blocks.backbones import BackboneConfig, mae_vit_config  # noqa: F401 (the generated __init__'s annotation, for pdoc)
from ..blocks.losses import mae_loss
from .method import AbstractMethod, Batch

__all__ = ["MAE", "MAEModel", "Reconstruction"]


class MAEModel(eqx.Module):
    """MAE's trainable parts: the encoder (a ``vitcore.ViT``, exported for transfer) and the decoder."""

    encoder: vitcore.ViT
    decoder: vitcore.MAEDecoder


class Reconstruction(NamedTuple):
    """One MAE forward pass. ``pred``/``target``: [b, n, p*p*c] for every patch (row-major; the target is the
    encoder-normalised image, ``encoder.normalise``, as MAE's loader normalises before the model); ``mask``: 1 where
    the patch was removed; ``ids_keep``: the [b, k] patches the encoder saw; ``num_tokens``: encoder tokens
    per example (class token + k)."""

    pred: Float[Array, "b n d"]
    target: Float[Array, "b n d"]
    mask: Float[Array, "b n"]
    ids_keep: Int[Array, "b k"]
    num_tokens: int


class MAE(AbstractMethod):
    """Masked autoencoder pre-training; trainable = ``MAEModel``, no non-trainable state.

    ``total_steps`` is taken for the uniform constructor; this method has no step schedule.
    The encoder is ``backbone`` as MAE's ViT: fixed 2-D sin-cos position embedding and xavier init, no head.
    ``decoder`` is a ``vitcore.MAE_DECODER_PRESETS`` name (``mae-decoder``: 8 x 512, ``mae-decoder-tiny``: 1
    block); ``decoder_depth`` / ``decoder_width`` override the preset (e.g. tiny test models). Each example
    keeps ``int(n * (1 - mask_ratio))`` of its ``n`` patches, drawn from the loss key.
    """

    name: ClassVar[str] = "mae"
    vit_only: ClassVar[str | None] = "it masks patch tokens"
    mask_ratio: float = eqx.field(static=True, default=0.75)
    decoder: str = eqx.field(static=True, default="mae-decoder")
    decoder_depth: int | None = eqx.field(static=True, default=None)
    decoder_width: int | None = eqx.field(static=True, default=None)
    norm_pix_loss: bool = eqx.field(static=True, default=True)

    def __check_init__(self) -> None:
        if not 0.0 < self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio={self.mask_ratio!r}; expected 0 < ratio < 1 (study: 0.55-0.85)")
        n = self.backbone.num_patches
        if int(n * (1 - self.mask_ratio)) < 1:
            raise ValueError(f"mask_ratio={self.mask_ratio} keeps none of the {n} patches of an image")
        if self.decoder not in vitcore.MAE_DECODER_PRESETS:
            names = sorted(vitcore.MAE_DECODER_PRESETS)
            raise ValueError(f"decoder={self.decoder!r}; expected one of {names}")
        for name in ("decoder_depth", "decoder_width"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}={value!r}; expected None (the preset's) or a positive int")
        self.encoder_config  # noqa: B018  (validates the sin-cos width through ViTConfig)

    @property
    def encoder_config(self) -> vitcore.ViTConfig:
        """MAE's ViT: ``backbone`` with sin-cos position embedding, xavier init and no classifier head."""
        return mae_vit_config(self.backbone)

    @property
    def decoder_dims(self) -> tuple[int, int]:
        """``(width, depth)`` of the decoder: the ``decoder`` preset's, overridden by ``decoder_width`` and
        ``decoder_depth``."""
        preset = vitcore.MAE_DECODER_PRESETS[self.decoder]
        width = preset["width"] if self.decoder_width is None else self.decoder_width
        depth = preset["depth"] if self.decoder_depth is None else self.decoder_depth
        return width, depth

    @property
    def num_visible(self) -> int:
        """Patches each example keeps (MAE's ``len_keep``)."""
        return int(self.backbone.num_patches * (1 - self.mask_ratio))

    def analytic_macs(self, batch_size: int) -> float:
        """Forward + backward (3x) of encoder (on the kept patches) and decoder (on every patch), minus the
        patch embedding's input gradient (``flopmeter.mae_forward_macs``)."""
        cfg = self.encoder_config
        width, depth = self.decoder_dims
        forward = flopmeter.mae_forward_macs(
            image_size=cfg.image_size, patch_size=cfg.patch_size, width=cfg.width, depth=cfg.depth,
            mask_ratio=self.mask_ratio, decoder_width=width, decoder_depth=depth, mlp_ratio=cfg.mlp_ratio,
            in_channels=cfg.in_channels)
        embed = flopmeter.patch_embed_macs(patches=cfg.num_patches, patch_size=cfg.patch_size, width=cfg.width,
                                           in_channels=cfg.in_channels)
        return float(batch_size * (3 * forward["total"] - embed))

    def init(self, *, key: PRNGKeyArray) -> tuple[MAEModel, dict[str, Any]]:
        k_enc, k_dec = jax.random.split(key)
        cfg = self.encoder_config
        decoder_config = vitcore.MAEDecoderConfig.for_encoder(
            cfg, preset=self.decoder, depth=self.decoder_depth, width=self.decoder_width
        )
        decoder = vitcore.MAEDecoder(decoder_config, key=k_dec)
        return MAEModel(vitcore.ViT(cfg, key=k_enc), decoder), {}

    def views(self, batch: Batch, *, step: Int[Array, ""], key: PRNGKeyArray) -> Batch:
        del step
        (image,) = make_views(batch["image"], mae_views(self.image_size), key=key)
        return {"image": image}

    def reconstruct(
        self, model: MAEModel, images: Float[Array, "b h w c"], *, key: PRNGKeyArray, inference: bool = False
    ) -> Reconstruction:
        """Mask, encode the kept patches, decode every patch (MAE's ``forward`` without the loss)."""
        k_mask, k_drop = jax.random.split(key)
        b = images.shape[0]
        n = self.backbone.num_patches
        ids_keep, mask, ids_restore = vitcore.random_masking(k_mask, b, n, self.mask_ratio)
        out = model.encoder(images, keep_indices=ids_keep, key=k_drop, inference=inference)
        pred = model.decoder(out.tokens, ids_restore)
        # MAE reconstructs the normalised image (its loader normalises before the model): the encoder's own.
        target = vitcore.patchify(model.encoder.normalise(images), self.backbone.patch_size)
        return Reconstruction(pred, target, mask, ids_keep, out.tokens.shape[1])

    def reconstruction_loss(
        self, pred: Float[Array, "b n d"], target: Float[Array, "b n d"], mask: Float[Array, "b n"]
    ) -> Float[Array, ""]:
        """``losses.mae_loss`` with this method's ``norm_pix_loss``: MSE on the masked patches only."""
        return mae_loss(pred, target, mask, norm_pix_loss=self.norm_pix_loss)

    def loss(
        self, trainable: MAEModel, state: Any, views: Batch, *, step: Int[Array, ""], key: PRNGKeyArray
    ) -> tuple[Float[Array, ""], dict[str, Any]]:
        del state, step
        rec = self.reconstruct(trainable, views["image"], key=key)
        loss = self.reconstruction_loss(rec.pred, rec.target, rec.mask)
        return loss, {"metrics": {"masked_fraction": jnp.mean(rec.mask)}}

    def weight_decay_mask(self, trainable: MAEModel) -> Any:
        """facebookresearch/mae's groups (timm's ``add_weight_decay``: no decay for biases and 1-D parameters):
        unlike the backbones' default rule the class token and the decoder's mask token decay (torch shape
        [1, 1, d]); norms and biases do not. MAE's position embeddings are fixed sin-cos tables, not parameters."""
        mask = eqx.tree_at(lambda m: m.decoder.mask_token, super().weight_decay_mask(trainable), True)
        if trainable.encoder.cls_token is not None:
            mask = eqx.tree_at(lambda m: m.encoder.cls_token, mask, True)
        return mask

    def encoder(self, trainable: MAEModel) -> vitcore.ViT:
        return trainable.encoder

    def final_layers(self, trainable: MAEModel) -> tuple[eqx.Module, ...]:
        """The decoder's pixel predictor."""
        return (trainable.decoder.decoder_pred,)

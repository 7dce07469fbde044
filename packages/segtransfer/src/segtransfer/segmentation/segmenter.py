"""`Segmenter`: a vitcore encoder (its final feature map) + an FCN head, and the three ways to build one.

Any vitcore backbone family works through the backbone face: the head reads ``patch_tokens`` (a ViT's last-layer
patch tokens after the final LayerNorm at stride p; an NFNet's final feature map at stride 32), with
``num_features`` channels, and ``with_image_size`` adapts the encoder to the fine-tuning crop."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.random as jr
import numpy as np
import vitcore
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from .fcn_head import FCNHead

__all__ = [
    "Segmenter",
    "create_segmenter",
    "segmenter_from_timm",
    "segmenter_from_scratch",
    "segmenter_weight_decay_mask",
    "segmenter_lr_scale",
]


def _hw(image_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    if isinstance(image_size, tuple) and len(image_size) == 2 and all(isinstance(s, int) for s in image_size):
        return image_size
    raise TypeError(f"image_size={image_size!r}: expected an int or a (height, width) tuple of ints")


class Segmenter(eqx.Module):
    """Encoder + FCN head: ``model(images [b, h, w, 3]) -> float32 logits [b, h, w, num_classes]``.

    The encoder runs at its configured ``image_size`` (the fine-tuning crop size; see `create_segmenter`), its
    final feature map ``patch_tokens`` (a ViT's last-layer patch tokens after the final LayerNorm) feeds the head,
    and the logits are upsampled to the input size. ``key`` with ``inference=False`` drives the encoder's
    drop-path/dropout and the head's dropout.
    """

    encoder: vitcore.AbstractBackbone
    head: FCNHead

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    @property
    def image_size(self) -> tuple[int, int]:
        return _hw(self.encoder.config.image_size)

    def __call__(
        self,
        images: Float[Array, "b h w c"],
        *,
        key: PRNGKeyArray | None = None,
        inference: bool = True,
    ) -> Float[Array, "b h w k"]:
        """Per-pixel class logits (float32) at the input resolution."""
        if not inference and key is None:
            raise ValueError("key=None with inference=False: training-mode dropout needs a key")
        k_enc, k_head = jr.split(key) if key is not None else (None, None)
        tokens = self.encoder(images, key=k_enc, inference=inference).patch_tokens
        return self.head(tokens, (images.shape[1], images.shape[2]), key=k_head, inference=inference)


def create_segmenter(
    encoder: vitcore.AbstractBackbone,
    num_classes: int,
    *,
    key: PRNGKeyArray,
    image_size: int | tuple[int, int] | None = None,
    head_channels: int = 256,
    num_convs: int = 2,
    norm_groups: int = 32,
    dropout: float = 0.1,
) -> Segmenter:
    """A `Segmenter` around an existing encoder (e.g. one restored from a pre-training checkpoint).

    The encoder (any vitcore backbone) must have no classification head (``num_classes=0``: build or restore it
    that way). When ``image_size`` differs from the encoder's, the encoder is adapted with ``with_image_size`` (a
    ViT's position embeddings are resampled, bicubic for learned ones, recomputed for sin-cos); at the same size
    the encoder is used untouched, so its outputs are unchanged. ``key`` initialises only the head.
    """
    if not isinstance(encoder, vitcore.AbstractBackbone):
        raise TypeError(f"encoder={type(encoder).__name__}: expected a vitcore backbone (vitcore.AbstractBackbone)")
    if encoder.config.num_classes != 0:
        raise ValueError(
            f"encoder.config.num_classes={encoder.config.num_classes}: expected 0 (a headless encoder); rebuild it "
            "with num_classes=0 (e.g. vitcore.from_timm(..., num_classes=0) without the head.* keys)"
        )
    if image_size is not None:
        encoder = encoder.with_image_size(_hw(image_size))
    head = FCNHead(
        encoder.num_features,
        num_classes,
        channels=head_channels,
        num_convs=num_convs,
        norm_groups=norm_groups,
        dropout=dropout,
        key=key,
    )
    return Segmenter(encoder=encoder, head=head)


def segmenter_from_timm(
    preset: str,
    state_dict: dict[str, np.ndarray],
    num_classes: int,
    *,
    key: PRNGKeyArray,
    image_size: int | tuple[int, int] | None = None,
    **head_kwargs,
) -> Segmenter:
    """A `Segmenter` whose encoder holds timm weights (`vitcore.from_timm`); the classifier ``head.*`` is dropped."""
    encoder_weights = {k: v for k, v in state_dict.items() if not k.startswith("head.")}
    encoder = vitcore.from_timm(preset, encoder_weights, num_classes=0)
    return create_segmenter(encoder, num_classes, key=key, image_size=image_size, **head_kwargs)


def segmenter_from_scratch(
    preset: str,
    num_classes: int,
    *,
    key: PRNGKeyArray,
    image_size: int | tuple[int, int] | None = None,
    head_kwargs: dict | None = None,
    **encoder_overrides,
) -> Segmenter:
    """A randomly initialised encoder (the study's from-scratch baseline) + head; ``image_size`` sets the encoder's
    input size directly (no interpolation needed)."""
    k_enc, k_head = jr.split(key)
    if image_size is not None:
        encoder_overrides["image_size"] = _hw(image_size)
    encoder = vitcore.create(preset, key=k_enc, num_classes=0, **encoder_overrides)
    return create_segmenter(encoder, num_classes, key=k_head, **(head_kwargs or {}))


def segmenter_weight_decay_mask(model: Segmenter) -> PyTree[bool]:
    """Bool pytree with the structure of ``eqx.filter(model, eqx.is_array)``: True = decay.

    Encoder: `vitcore.weight_decay_mask` (weights decay; biases, norms, position embeddings, class token do not).
    Head: conv and classifier kernels decay; GroupNorm scales/offsets and the classifier bias do not.
    """
    params = eqx.filter(model, eqx.is_array)
    head_mask = jax.tree.map(lambda _: False, params.head)
    head_mask = eqx.tree_at(
        lambda h: [c.weight for c in h.convs] + [h.classifier.weight],
        head_mask,
        replace=[True] * (len(model.head.convs) + 1),
    )
    return Segmenter(encoder=vitcore.weight_decay_mask(model.encoder), head=head_mask)


def segmenter_lr_scale(model: Segmenter, *, encoder: float = 1.0, head: float = 1.0) -> PyTree[float]:
    """Float pytree (structure of ``eqx.filter(model, eqx.is_array)``) for `finetune_optimizer(lr_scale=...)`:
    learning-rate multipliers for the encoder and the head (mmseg's ``paramwise_cfg`` ``lr_mult``). The study uses
    one learning rate (1.0, 1.0); a larger head multiplier helps randomly initialised heads on short runs."""
    for name, value in (("encoder", encoder), ("head", head)):
        if not value >= 0:
            raise ValueError(f"{name}={value!r}: expected a multiplier >= 0")
    params = eqx.filter(model, eqx.is_array)
    return Segmenter(
        encoder=jax.tree.map(lambda _: float(encoder), params.encoder),
        head=jax.tree.map(lambda _: float(head), params.head),
    )

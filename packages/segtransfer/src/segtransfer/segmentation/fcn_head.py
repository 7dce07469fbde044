"""FCN decode head (Long et al. 2015, as configured in the study / mmseg's ``FCNHead`` without ``concat_input``).

grid tokens [b, gh, gw, d] -> (3x3 conv -> GroupNorm -> ReLU) x num_convs -> channel dropout -> 1x1 classifier ->
bilinear upsampling to the image size.

Choices (documented because the study leaves them open):
- **GroupNorm** (32 groups) instead of mmseg's SyncBatchNorm: it has no running statistics, so the head is a plain
  Equinox module with no cross-device state to synchronise, and train/eval behave the same. It is computed in float32.
- Dropout drops whole channels with p = 0.1 (mmseg's ``nn.Dropout2d`` in ``BaseDecodeHead``).
- Upsampling is bilinear with half-pixel centres, i.e. PyTorch's ``align_corners=False`` (mmseg's ``resize`` in
  ``EncoderDecoder``): ``jax.image.resize(method="linear", antialias=False)``. When upsampling, its edge
  handling (renormalised weights) equals PyTorch's clamping of source coordinates to the border.
- No ``concat_input`` conv (mmseg's FCNHead default concatenates the input with the conv output and adds another
  3x3 conv); the study describes two convs, dropout and a 1x1 classifier, which is what this is.
- The whole head runs in float32 (it is < 1% of the FLOPs of a ViT-B encoder at 512).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = ["FCNHead", "upsample_bilinear"]


def upsample_bilinear(x: Float[Array, "b h w c"], size: tuple[int, int]) -> Float[Array, "b H W c"]:
    """Bilinear resize of an NHWC batch to ``size = (H, W)`` with PyTorch ``align_corners=False`` semantics.

    Exactly PyTorch's result when upsampling. When downsampling no antialiasing is applied (also PyTorch's default).
    """
    b, _, _, c = x.shape
    return jax.image.resize(x, (b, size[0], size[1], c), method="linear", antialias=False)


class FCNHead(eqx.Module):
    """FCN segmentation head on a grid of encoder tokens; ``head(tokens, size)`` -> float32 logits [b, H, W, k].

    Build with ``FCNHead(in_channels, num_classes, key=key)``; ``channels`` (256), ``num_convs`` (2),
    ``norm_groups`` (32, must divide ``channels``) and ``dropout`` (0.1) follow the study. Call with
    ``key`` and ``inference=False`` to apply dropout.
    """

    convs: tuple[eqx.nn.Conv2d, ...]
    norms: tuple[eqx.nn.GroupNorm, ...]
    classifier: eqx.nn.Conv2d
    dropout: float = eqx.field(static=True)
    num_classes: int = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        channels: int = 256,
        num_convs: int = 2,
        norm_groups: int = 32,
        dropout: float = 0.1,
        key: PRNGKeyArray,
    ):
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes), ("channels", channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: expected a positive int")
        if not isinstance(num_convs, int) or num_convs < 1:
            raise ValueError(f"num_convs={num_convs!r}: expected an int >= 1 (the study uses 2)")
        if not isinstance(norm_groups, int) or norm_groups < 1 or channels % norm_groups:
            raise ValueError(f"norm_groups={norm_groups!r}: expected a positive divisor of channels={channels}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout!r}: expected a probability in [0, 1)")
        k_convs, k_cls = jr.split(key, 2)
        conv_keys = jr.split(k_convs, num_convs)
        widths = [in_channels] + [channels] * num_convs
        # Convs have bias=False: the GroupNorm shift right after makes a bias redundant (mmseg's ConvModule does the
        # same when a norm follows).
        self.convs = tuple(
            eqx.nn.Conv2d(widths[i], widths[i + 1], 3, padding=1, use_bias=False, key=conv_keys[i])
            for i in range(num_convs)
        )
        self.norms = tuple(eqx.nn.GroupNorm(norm_groups, channels) for _ in range(num_convs))
        classifier = eqx.nn.Conv2d(channels, num_classes, 1, key=k_cls)
        # mmseg initialises conv_seg with normal(std=0.01), bias 0: small initial logits, uniform initial softmax.
        self.classifier = eqx.tree_at(
            lambda c: (c.weight, c.bias),
            classifier,
            (0.01 * jr.normal(k_cls, classifier.weight.shape), jnp.zeros_like(classifier.bias)),
        )
        self.dropout = float(dropout)
        self.num_classes = num_classes

    def _features(self, x: Float[Array, "c h w"]) -> Float[Array, "c2 h w"]:
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = jax.nn.relu(norm(conv(x)))
        return x

    def __call__(
        self,
        tokens: Float[Array, "b gh gw d"],
        size: tuple[int, int],
        *,
        key: PRNGKeyArray | None = None,
        inference: bool = True,
    ) -> Float[Array, "b H W k"]:
        """Logits at ``size = (H, W)`` (usually the input image size) from the grid tokens of an encoder."""
        if tokens.shape[-1] != self.convs[0].in_channels:
            raise ValueError(
                f"tokens.shape={tokens.shape}: expected last axis {self.convs[0].in_channels} (the encoder width)"
            )
        if not inference and self.dropout > 0 and key is None:
            raise ValueError("key=None with inference=False: dropout needs a key (or pass inference=True)")
        x = jnp.transpose(tokens.astype(jnp.float32), (0, 3, 1, 2))  # Equinox convs are channel-first
        feats = jax.vmap(self._features)(x)
        if not inference and self.dropout > 0:
            keep = jr.bernoulli(key, 1.0 - self.dropout, (feats.shape[0], feats.shape[1], 1, 1))
            feats = jnp.where(keep, feats / (1.0 - self.dropout), 0.0)
        logits = jax.vmap(self.classifier)(feats)
        logits = jnp.transpose(logits, (0, 2, 3, 1))
        return upsample_bilinear(logits, size)

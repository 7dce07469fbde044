"""Mask head: 4 conv + 2x deconv + per-class 1x1 predictor on 14x14 pooled ROI features -> 28x28 mask logits.

detectron2 ``MaskRCNNConvUpsampleHead(conv_dims=[256] * 5, conv_norm="LN")``: 3x3 conv (no bias) -> LayerNorm ->
ReLU, x4; ConvTranspose(2, stride 2) -> ReLU; 1x1 conv to ``num_classes`` channels with normal(0.001) init.
Only the channel of the ROI's class is used (class-specific masks).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from .layers import ChannelNorm, Conv2d, ConvTranspose2x2

__all__ = ["MaskHead"]


class MaskHead(eqx.Module):
    """``head(pooled [r, s, s, c]) -> logits [r, 2s, 2s, num_classes]``."""

    convs: tuple[Conv2d, ...]
    norms: tuple[ChannelNorm, ...]
    deconv: ConvTranspose2x2
    predictor: Conv2d

    def __init__(self, channels: int, num_classes: int, *, conv_channels: int, num_convs: int,
                 key: PRNGKeyArray):
        k_convs, k_deconv, k_pred = jr.split(key, 3)
        widths = [channels] + [conv_channels] * num_convs
        self.convs = tuple(
            Conv2d(widths[i], widths[i + 1], 3, use_bias=False, key=k)
            for i, k in enumerate(jr.split(k_convs, num_convs))
        )
        self.norms = tuple(ChannelNorm(conv_channels) for _ in range(num_convs))
        self.deconv = ConvTranspose2x2(conv_channels, conv_channels, key=k_deconv)
        self.predictor = Conv2d(conv_channels, num_classes, 1, std=0.001, key=k_pred)

    def _one(self, x: Float[Array, "s s c"]) -> Float[Array, "s2 s2 k"]:
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = jax.nn.relu(norm(conv(x)))
        return self.predictor(jax.nn.relu(self.deconv(x)))

    def __call__(self, pooled: Float[Array, "r s s c"]) -> Float[Array, "r s2 s2 k"]:
        return jax.vmap(self._one)(pooled)

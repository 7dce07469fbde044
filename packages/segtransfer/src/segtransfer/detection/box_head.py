"""Fast R-CNN box head: 4 conv + 1 fc on pooled ROI features, then class scores and class-specific deltas.

detectron2 ``FastRCNNConvFCHead(conv_dims=[256] * 4, fc_dims=[1024], conv_norm="LN")`` + ``FastRCNNOutputLayers``
(ViTDet's "4conv1fc"): 3x3 conv (no bias) -> LayerNorm -> ReLU, x4; flatten; fc -> ReLU; a linear layer to
``num_classes + 1`` logits (background last) with normal(0.01) init and one to ``4 * num_classes`` deltas with
normal(0.001) init.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from .layers import ChannelNorm, Conv2d, Dense

__all__ = ["BoxHead"]


class BoxHead(eqx.Module):
    """``head(pooled [r, s, s, c]) -> (logits [r, num_classes + 1], deltas [r, num_classes, 4])``."""

    convs: tuple[Conv2d, ...]
    norms: tuple[ChannelNorm, ...]
    fc: Dense
    classifier: Dense
    regressor: Dense

    def __init__(self, channels: int, pool_size: int, num_classes: int, *, conv_channels: int, num_convs: int,
                 fc_dim: int, key: PRNGKeyArray):
        k_convs, k_fc, k_cls, k_reg = jr.split(key, 4)
        widths = [channels] + [conv_channels] * num_convs
        self.convs = tuple(
            Conv2d(widths[i], widths[i + 1], 3, use_bias=False, key=k)
            for i, k in enumerate(jr.split(k_convs, num_convs))
        )
        self.norms = tuple(ChannelNorm(conv_channels) for _ in range(num_convs))
        self.fc = Dense(conv_channels * pool_size * pool_size, fc_dim, key=k_fc)
        self.classifier = Dense(fc_dim, num_classes + 1, std=0.01, key=k_cls)
        self.regressor = Dense(fc_dim, 4 * num_classes, std=0.001, key=k_reg)

    def _one(self, x: Float[Array, "s s c"]) -> Float[Array, " f"]:
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = jax.nn.relu(norm(conv(x)))
        return jax.nn.relu(self.fc(x.reshape(-1)))

    def __call__(self, pooled: Float[Array, "r s s c"]) -> tuple[Float[Array, "r k1"], Float[Array, "r k 4"]]:
        features = jax.vmap(self._one)(pooled)
        deltas = self.regressor(features)
        return self.classifier(features), deltas.reshape(deltas.shape[0], -1, 4)

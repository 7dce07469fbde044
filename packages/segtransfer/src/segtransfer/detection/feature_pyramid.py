"""ViTDet's simple feature pyramid (Li et al. 2022, "Exploring Plain Vision Transformer Backbones for Object
Detection", sec. 3 / detectron2 ``SimpleFeaturePyramid`` + ``LastLevelMaxPool``).

From the single stride-p map of a plain ViT (``[gh, gw, d]``) build one map per scale factor:
- 4: ConvT(d, d/2, 2, 2) -> LayerNorm -> GELU -> ConvT(d/2, d/4, 2, 2)
- 2: ConvT(d, d/2, 2, 2)
- 1: the map itself
- 0.5: 2x2 max-pool, stride 2
each followed by 1x1 conv -> LayerNorm -> 3x3 conv -> LayerNorm (``channels`` wide, no bias: the norm's shift
replaces it, detectron2 ``use_bias = norm == ""``), plus one more level by stride-2 subsampling of the last one
(``max_pool2d(kernel_size=1, stride=2)``, detectron2's ``LastLevelMaxPool``). LayerNorm is over channels at each
pixel; GELU is the exact (erf) one, PyTorch's ``nn.GELU()``. Initialisation is the reference's: the 1x1 and 3x3
convolutions c2_xavier_fill (uniform(+-sqrt(3 / fan_in))), the transposed convolutions PyTorch's default
(uniform(+-1 / sqrt(fan_in)) for weight and bias), LayerNorms 1 and 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from .layers import ChannelNorm, Conv2d, ConvTranspose2x2

__all__ = ["SimpleFeaturePyramid", "SCALE_FACTORS"]

SCALE_FACTORS = (4.0, 2.0, 1.0, 0.5)


class _Stage(eqx.Module):
    up: tuple[ConvTranspose2x2, ...]
    up_norms: tuple[ChannelNorm, ...]
    pool: bool = eqx.field(static=True)
    lateral: Conv2d
    lateral_norm: ChannelNorm
    output: Conv2d
    output_norm: ChannelNorm

    def __init__(self, width: int, scale: float, channels: int, *, key: PRNGKeyArray):
        k_up1, k_up2, k_lat, k_out = jr.split(key, 4)
        if scale == 4.0:
            self.up = (
                ConvTranspose2x2(width, width // 2, key=k_up1, torch_default=True),
                ConvTranspose2x2(width // 2, width // 4, key=k_up2, torch_default=True),
            )
            self.up_norms = (ChannelNorm(width // 2),)
            dim = width // 4
        elif scale == 2.0:
            self.up, self.up_norms, dim = (ConvTranspose2x2(width, width // 2, key=k_up1, torch_default=True),), (), \
                width // 2
        else:
            self.up, self.up_norms, dim = (), (), width
        self.pool = scale == 0.5
        self.lateral = Conv2d(dim, channels, 1, use_bias=False, key=k_lat, xavier_fill=True)
        self.lateral_norm = ChannelNorm(channels)
        self.output = Conv2d(channels, channels, 3, use_bias=False, key=k_out, xavier_fill=True)
        self.output_norm = ChannelNorm(channels)

    def __call__(self, x: Float[Array, "h w d"]) -> Float[Array, "h2 w2 c"]:
        if self.up:
            x = self.up[0](x)
            if len(self.up) == 2:
                x = self.up[1](jax.nn.gelu(self.up_norms[0](x), approximate=False))
        if self.pool:
            x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (2, 2, 1), (2, 2, 1), "VALID")
        x = self.lateral_norm(self.lateral(x))
        return self.output_norm(self.output(x))


class SimpleFeaturePyramid(eqx.Module):
    """``pyramid(tokens [b, gh, gw, d]) -> tuple of [b, h_l, w_l, channels]``: one map per scale factor (largest
    first) plus the subsampled top level. Strides are ``input_stride / scale`` and twice the last one."""

    stages: tuple[_Stage, ...]
    scale_factors: tuple[float, ...] = eqx.field(static=True)

    def __init__(self, width: int, *, channels: int = 256, scale_factors: Sequence[float] = SCALE_FACTORS,
                 key: PRNGKeyArray):
        scale_factors = tuple(float(s) for s in scale_factors)
        bad = [s for s in scale_factors if s not in SCALE_FACTORS]
        if bad or not scale_factors or list(scale_factors) != sorted(scale_factors, reverse=True):
            raise ValueError(
                f"scale_factors={scale_factors!r}: expected distinct values from {SCALE_FACTORS}, largest first"
            )
        if 4.0 in scale_factors and width % 4 or 2.0 in scale_factors and width % 2:
            raise ValueError(f"width={width}: the 4x/2x stages halve it twice/once; expected a multiple of 4")
        keys = jr.split(key, len(scale_factors))
        self.stages = tuple(_Stage(width, s, channels, key=k) for s, k in zip(scale_factors, keys, strict=True))
        self.scale_factors = scale_factors

    def strides(self, input_stride: int) -> tuple[int, ...]:
        """Strides of the output levels on a backbone map of stride ``input_stride`` (the ViT's patch size)."""
        strides = []
        for s in self.scale_factors:
            stride = input_stride / s
            if stride != int(stride):
                raise ValueError(f"input_stride={input_stride} / scale {s} is not an integer stride")
            strides.append(int(stride))
        return (*strides, 2 * strides[-1])

    def __call__(self, tokens: Float[Array, "b gh gw d"]) -> tuple[Float[Array, "b _ _ c"], ...]:
        x = tokens.astype(jnp.float32)
        outs = [jax.vmap(stage)(x) for stage in self.stages]
        outs.append(outs[-1][:, ::2, ::2])
        return tuple(outs)

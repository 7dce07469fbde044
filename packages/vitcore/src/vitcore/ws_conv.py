"""Scaled weight standardisation (Brock et al. 2021a/b) and `WSConv2d`, the NFNet convolution.

Reference: deepmind-research `nfnets/base.py` `WSConv2D.standardize_weight`:
    W_hat = gain * (W - mean(W)) / sqrt(max(N * var(W), eps)),  N = fan-in,
with mean/var over each output unit's fan-in (biased variance) and eps = 1e-4 on N * var. Weights here are
stored OIHW (the torch/timm layout, as `vitcore.ViT`'s patch embedding), so the fan-in axes are (1, 2, 3).
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

# DeepMind's eps on N * var (not on var): a dead unit (all-equal weights) gets scale 1/sqrt(eps), not inf.
WS_EPS = 1e-4
# Std of a standard normal truncated at +-2: haiku's VarianceScaling(..., "normal") divides by it.
_TRUNC_STD = 0.87962566103423978


def standardize_weight(
    weight: Float[Array, "o i kh kw"], gain: Float[Array, " o"], eps: float = WS_EPS
) -> Float[Array, "o i kh kw"]:
    """Scaled weight standardisation of an OIHW kernel, in float32: every output unit's weights get zero mean
    and sum of squares ``gain**2`` (unit fan-in variance after the 1/sqrt(N) scaling)."""
    w = weight.astype(jnp.float32)
    fan_in = math.prod(w.shape[1:])
    mean = jnp.mean(w, axis=(1, 2, 3), keepdims=True)
    var = jnp.var(w, axis=(1, 2, 3), keepdims=True)
    scale = jax.lax.rsqrt(jnp.maximum(var * fan_in, eps)) * gain.astype(jnp.float32)[:, None, None, None]
    return w * scale - mean * scale


def standard_truncated_normal(key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
    """I.i.d. N(0, 1) draws truncated at +-2, in float32.

    Drawn as a prefix of a vector whose length is the next power of two: op-by-op JAX compiles one sampler per
    distinct shape, and an NFNet has ~25 distinct kernel shapes but ~10 such lengths, which halves the time to
    initialise on CPU. A prefix of i.i.d. draws is i.i.d., so the distribution is unchanged."""
    n = math.prod(shape)
    bucket = 1 << max(n - 1, 0).bit_length()
    return jr.truncated_normal(key, -2.0, 2.0, (bucket,), jnp.float32)[:n].reshape(shape)


def fan_in_normal(key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
    """haiku's VarianceScaling(1.0, "fan_in", "normal") for a [out, fan-in...] shape: truncated normal at +-2
    with std sqrt(1 / fan_in) after truncation."""
    std = math.sqrt(1.0 / math.prod(shape[1:])) / _TRUNC_STD
    return std * standard_truncated_normal(key, shape)


class WSConv2d(eqx.Module):
    """2D convolution of one NHWC example with a scaled-weight-standardised kernel, learnable per-output gain
    and bias, TF "SAME" padding (as the DeepMind code). Computes in the dtype of its input; the kernel is
    standardised in float32 and then cast."""

    weight: Float[Array, "o i kh kw"]
    gain: Float[Array, " o"]
    bias: Float[Array, " o"]
    stride: int = eqx.field(static=True)
    groups: int = eqx.field(static=True)

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, *, key: PRNGKeyArray, stride: int = 1, groups: int = 1
    ):
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
        self.weight = fan_in_normal(key, (out_channels, in_channels // groups, kernel, kernel))
        self.gain = jnp.ones((out_channels,), jnp.float32)
        self.bias = jnp.zeros((out_channels,), jnp.float32)
        self.stride = stride
        self.groups = groups

    def __call__(self, x: Float[Array, "h w c"]) -> Float[Array, "h2 w2 o"]:
        kernel = standardize_weight(self.weight, self.gain).astype(x.dtype)
        y = jax.lax.conv_general_dilated(
            x[None],
            kernel,
            window_strides=(self.stride, self.stride),
            padding="SAME",
            dimension_numbers=("NHWC", "OIHW", "NHWC"),
            feature_group_count=self.groups,
        )[0]
        return y + self.bias.astype(x.dtype)

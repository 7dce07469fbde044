"""`Linear` and `LayerNorm`: the two parameterised primitives every transformer here is built from.

Parameters are float32; a `Linear` computes in the dtype of its input (bfloat16 under mixed precision), a
`LayerNorm` normalises in float32 and returns its input's dtype.
"""

import math
from functools import partial
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

Init = Literal["trunc_normal", "xavier"]


def trunc_normal(key: PRNGKeyArray, shape: tuple[int, ...], std: float = 0.02) -> Float[Array, "..."]:
    """Normal(0, std) truncated at +-2 std (timm/big_vision weight init)."""
    return std * jr.truncated_normal(key, -2.0, 2.0, shape, jnp.float32)


def xavier_uniform(key: PRNGKeyArray, shape: tuple[int, int]) -> Float[Array, "out in"]:
    """Glorot-uniform for a [fan_out, fan_in] matrix (MAE's init of every nn.Linear)."""
    fan_out, fan_in = shape
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return jr.uniform(key, shape, jnp.float32, -limit, limit)


class Linear(eqx.Module):
    """y = x W^T + b with W stored [out, in] (the torch/timm layout)."""

    weight: Float[Array, "out in"]
    bias: Float[Array, " out"] | None

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        key: PRNGKeyArray,
        use_bias: bool = True,
        init: Init = "trunc_normal",
        bias_init: float = 0.0,
    ):
        shape = (out_features, in_features)
        self.weight = xavier_uniform(key, shape) if init == "xavier" else trunc_normal(key, shape)
        self.bias = jnp.full((out_features,), bias_init, jnp.float32) if use_bias else None

    def __call__(self, x: Float[Array, "*n in"]) -> Float[Array, "*n out"]:
        y = x @ self.weight.T.astype(x.dtype)
        if self.bias is not None:
            y = y + self.bias.astype(x.dtype)
        return y


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def layer_norm(
    x: Float[Array, "*n d"], scale: Float[Array, " d"], bias: Float[Array, " d"], eps: float
) -> Float[Array, "*n d"]:
    """LayerNorm over the last axis, computed in float32, returned in `x`'s dtype.

    Its gradient is written by hand (`_layer_norm_bwd`), not derived: autodiff of the forward leaves XLA:CPU a
    long chain of elementwise ops in every block's backward, which its fusion pass copied into each consumer
    again and again (ViT-Ti/16: the chains of all later blocks recomputed for each layer; docs/benchmarks.md).
    Reverse mode only (a custom VJP): `jax.jvp` through it raises.
    """
    return _layer_norm_fwd(x, scale, bias, eps)[0]


def _layer_norm_fwd(x, scale, bias, eps):
    x32 = x.astype(jnp.float32)
    mean = jnp.mean(x32, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x32 - mean), axis=-1, keepdims=True)
    rstd = jax.lax.rsqrt(var + eps)
    y = (x32 - mean) * rstd * scale + bias
    return y.astype(x.dtype), (x, mean, rstd, scale)


def _layer_norm_bwd(eps, residuals, dy):
    # x_hat = (x - mean) * rstd; with g = dy * scale:
    # dx = rstd * (g - mean(g) - x_hat * mean(g * x_hat)), dscale = sum(dy * x_hat), dbias = sum(dy).
    del eps
    x, mean, rstd, scale = residuals
    dy = dy.astype(jnp.float32)
    x_hat = (x.astype(jnp.float32) - mean) * rstd
    g = dy * scale
    dx = rstd * (
        g - jnp.mean(g, axis=-1, keepdims=True) - x_hat * jnp.mean(g * x_hat, axis=-1, keepdims=True)
    )
    leading = tuple(range(x.ndim - 1))
    return dx.astype(x.dtype), jnp.sum(dy * x_hat, axis=leading), jnp.sum(dy, axis=leading)


layer_norm.defvjp(_layer_norm_fwd, _layer_norm_bwd)


class LayerNorm(eqx.Module):
    """LayerNorm over the last axis, computed in float32, returned in the input dtype (see `layer_norm`)."""

    scale: Float[Array, " d"]
    bias: Float[Array, " d"]
    eps: float = eqx.field(static=True)

    def __init__(self, dim: int, *, eps: float = 1e-6):
        self.scale = jnp.ones((dim,), jnp.float32)
        self.bias = jnp.zeros((dim,), jnp.float32)
        self.eps = eps

    def __call__(self, x: Float[Array, "*n d"]) -> Float[Array, "*n d"]:
        return layer_norm(x, self.scale, self.bias, self.eps)

"""NHWC convolution, 2x2 stride-2 transposed convolution, channel LayerNorm and `Dense` (a linear layer in
detectron2's [in, out] layout and init): the detector's layers.

They take one example (``[h, w, c]``; ``jax.vmap`` over images or ROIs), keep float32 parameters and compute in
float32. Kernels are stored HWIO and named ``weight`` (the weight-decay rule matches that name). Initialisation
follows detectron2's heads: c2_msra_fill (He normal, fan_out) for convolutions, normal(std) where a layer asks for
it (RPN, predictors), c2_xavier_fill (uniform(+-sqrt(3 / fan_in))) for fully connected layers and where a
convolution asks for it (``xavier_fill=True``: ViTDet's pyramid); PyTorch's default (uniform(+-1 / sqrt(fan_in)),
bias too) for a transposed convolution that asks for it (``torch_default=True``: ViTDet's pyramid upsampling).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = ["Conv2d", "ConvTranspose2x2", "ChannelNorm", "Dense"]


def _he_normal_fan_out(key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
    kh, kw, _, c_out = shape
    return jr.normal(key, shape, jnp.float32) * math.sqrt(2.0 / (kh * kw * c_out))


def _xavier_fill(key: PRNGKeyArray, shape: tuple[int, ...], fan_in: int) -> Float[Array, "..."]:
    # Caffe2's XavierFill: uniform(-sqrt(3 / fan_in), sqrt(3 / fan_in)) (detectron2's c2_xavier_fill).
    limit = math.sqrt(3.0 / fan_in)
    return jr.uniform(key, shape, jnp.float32, -limit, limit)


class Conv2d(eqx.Module):
    """k x k convolution with 'same' padding and stride 1 on ``[h, w, c_in]``; optional bias; ``std`` > 0
    draws normal(0, std) weights, ``xavier_fill`` c2_xavier_fill ones, instead of c2_msra_fill."""

    weight: Float[Array, "k k cin cout"]
    bias: Float[Array, " cout"] | None

    def __init__(self, c_in: int, c_out: int, kernel: int, *, key: PRNGKeyArray, use_bias: bool = True,
                 std: float = 0.0, xavier_fill: bool = False):
        shape = (kernel, kernel, c_in, c_out)
        if std > 0:
            self.weight = std * jr.normal(key, shape, jnp.float32)
        elif xavier_fill:
            self.weight = _xavier_fill(key, shape, kernel * kernel * c_in)
        else:
            self.weight = _he_normal_fan_out(key, shape)
        self.bias = jnp.zeros((c_out,), jnp.float32) if use_bias else None

    def __call__(self, x: Float[Array, "h w cin"]) -> Float[Array, "h w cout"]:
        y = jax.lax.conv_general_dilated(
            x[None], self.weight, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )[0]
        return y if self.bias is None else y + self.bias


class ConvTranspose2x2(eqx.Module):
    """Transposed convolution, kernel 2 and stride 2 (PyTorch ``ConvTranspose2d(c_in, c_out, 2, 2)``).

    With kernel = stride the output blocks do not overlap: input pixel (i, j) writes the 2x2 block
    (2i + a, 2j + b) = x[i, j] @ weight[a, b]. ``weight`` is [2, 2, c_in, c_out]; PyTorch stores [c_in, c_out, 2, 2].
    Initialised with c2_msra_fill and a zero bias (detectron2's mask head), or with ``torch_default`` as PyTorch's
    ``ConvTranspose2d`` initialises itself: weight and bias uniform(+-1 / sqrt(fan_in)), where PyTorch's fan_in of
    the [c_in, c_out, 2, 2] weight is ``c_out * 4``.
    """

    weight: Float[Array, "2 2 cin cout"]
    bias: Float[Array, " cout"]

    def __init__(self, c_in: int, c_out: int, *, key: PRNGKeyArray, torch_default: bool = False):
        if torch_default:
            k_weight, k_bias = jr.split(key)
            bound = 1.0 / math.sqrt(c_out * 4)
            self.weight = jr.uniform(k_weight, (2, 2, c_in, c_out), jnp.float32, -bound, bound)
            self.bias = jr.uniform(k_bias, (c_out,), jnp.float32, -bound, bound)
        else:
            self.weight = _he_normal_fan_out(key, (2, 2, c_in, c_out))
            self.bias = jnp.zeros((c_out,), jnp.float32)

    def __call__(self, x: Float[Array, "h w cin"]) -> Float[Array, "h2 w2 cout"]:
        h, w, _ = x.shape
        y = jnp.einsum("hwc,abcd->hawbd", x, self.weight)
        return y.reshape(2 * h, 2 * w, -1) + self.bias


class ChannelNorm(eqx.Module):
    """LayerNorm over channels at every pixel (detectron2's ``LN`` conv norm), eps 1e-6, float32."""

    scale: Float[Array, " c"]
    bias: Float[Array, " c"]

    def __init__(self, channels: int):
        self.scale = jnp.ones((channels,), jnp.float32)
        self.bias = jnp.zeros((channels,), jnp.float32)

    def __call__(self, x: Float[Array, "*n c"]) -> Float[Array, "*n c"]:
        mean = jnp.mean(x, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + 1e-6) * self.scale + self.bias


class Dense(eqx.Module):
    """y = x @ weight + bias with weight [in, out]; ``std`` > 0 draws normal(0, std) weights (detectron2's
    box predictor), otherwise c2_xavier_fill."""

    weight: Float[Array, "cin cout"]
    bias: Float[Array, " cout"]

    def __init__(self, c_in: int, c_out: int, *, key: PRNGKeyArray, std: float = 0.0):
        if std > 0:
            self.weight = std * jr.normal(key, (c_in, c_out), jnp.float32)
        else:
            self.weight = _xavier_fill(key, (c_in, c_out), c_in)
        self.bias = jnp.zeros((c_out,), jnp.float32)

    def __call__(self, x: Float[Array, "*n cin"]) -> Float[Array, "*n cout"]:
        return x @ self.weight + self.bias

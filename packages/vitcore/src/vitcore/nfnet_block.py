"""The NFNet residual block (DeepMind `NFBlock`), its squeeze-excite, and the gamma-scaled activation.

Each block computes, for one NHWC example x (deepmind-research nfnets/nfnet.py):

    h = gamma * act(x) * beta
    shortcut = x                                  (same shape)
             | conv_shortcut(avg_pool_2x2(h))     (transition block with stride 2)
             | conv_shortcut(h)                   (transition block with stride 1, channel change)
    r = conv2(act(conv1b(act(conv1(act(conv0(h)))))))   1x1 -> grouped 3x3 (stride) -> grouped 3x3 -> 1x1
    r = 2 * se(r) * r,  then stochastic depth,  then * skip_gain (a learnable scalar, 0 at init: SkipInit)
    out = alpha * r + shortcut
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from .linear import Linear
from .ws_conv import WSConv2d, standard_truncated_normal


def nf_activation(x: Float[Array, "..."], name: str, gamma: float) -> Float[Array, "..."]:
    """gamma * act(x), DM's `nonlinearities`; GELU is JAX's default tanh approximation, as the DM code."""
    if name == "gelu":
        y = jax.nn.gelu(x, approximate=True)
    elif name == "relu":
        y = jax.nn.relu(x)
    else:  # "silu" (NFNetConfig validates the name)
        y = jax.nn.silu(x)
    return y * jnp.asarray(gamma, x.dtype)


def haiku_linear(in_features: int, out_features: int, *, key: PRNGKeyArray, std: float | None) -> Linear:
    """A `Linear` with haiku's init: weight truncated-normal (+-2) with std 1/sqrt(fan_in) (`std=None`, haiku's
    default), or normal(0, std) (the classifier, as DeepMind's `fc_init`); zero bias."""
    shape = (out_features, in_features)
    if std is None:
        weight = in_features**-0.5 * standard_truncated_normal(key, shape)
    else:
        weight = std * jr.normal(key, shape, jnp.float32)
    layer = eqx.filter_eval_shape(Linear, in_features, out_features, key=key)  # structure only, no draw
    return eqx.tree_at(lambda m: (m.weight, m.bias), layer, (weight, jnp.zeros((out_features,), jnp.float32)))


class SqueezeExcite(eqx.Module):
    """Mean-pool over space -> fc0 -> ReLU -> fc1 -> sigmoid: a per-channel gate in (0, 1)."""

    fc0: Linear
    fc1: Linear

    def __init__(self, channels: int, hidden: int, *, key: PRNGKeyArray):
        k0, k1 = jr.split(key)
        self.fc0 = haiku_linear(channels, hidden, key=k0, std=None)
        self.fc1 = haiku_linear(hidden, channels, key=k1, std=None)

    def __call__(self, x: Float[Array, "h w c"]) -> Float[Array, " c"]:
        pooled = jnp.mean(x.astype(jnp.float32), axis=(0, 1))  # pooling in float32
        return jax.nn.sigmoid(self.fc1(jax.nn.relu(self.fc0(pooled)))).astype(x.dtype)


class NFBlock(eqx.Module):
    """One NFNet bottleneck block; see the module docstring for the computation."""

    conv0: WSConv2d
    conv1: WSConv2d
    conv1b: WSConv2d
    conv2: WSConv2d
    conv_shortcut: WSConv2d | None
    se: SqueezeExcite
    skip_gain: Float[Array, ""]
    stride: int = eqx.field(static=True)
    alpha: float = eqx.field(static=True)
    beta: float = eqx.field(static=True)
    drop_path_rate: float = eqx.field(static=True)
    activation: str = eqx.field(static=True)
    gamma: float = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int,
        *,
        key: PRNGKeyArray,
        group_size: int,
        se_ratio: float,
        stride: int,
        alpha: float,
        beta: float,
        drop_path_rate: float,
        activation: str,
        gamma: float,
    ):
        k0, k1, k1b, k2, k_short, k_se = jr.split(key, 6)
        groups = width // group_size
        self.conv0 = WSConv2d(in_channels, width, 1, key=k0)
        self.conv1 = WSConv2d(width, width, 3, key=k1, stride=stride, groups=groups)
        self.conv1b = WSConv2d(width, width, 3, key=k1b, groups=groups)
        self.conv2 = WSConv2d(width, out_channels, 1, key=k2)
        if stride > 1 or in_channels != out_channels:
            self.conv_shortcut = WSConv2d(in_channels, out_channels, 1, key=k_short)
        else:
            self.conv_shortcut = None
        self.se = SqueezeExcite(out_channels, max(1, int(out_channels * se_ratio)), key=k_se)
        self.skip_gain = jnp.zeros((), jnp.float32)
        self.stride = stride
        self.alpha = alpha
        self.beta = beta
        self.drop_path_rate = drop_path_rate
        self.activation = activation
        self.gamma = gamma

    def _act(self, x: Float[Array, "..."]) -> Float[Array, "..."]:
        return nf_activation(x, self.activation, self.gamma)

    def __call__(self, x: Float[Array, "h w c"], *, key: PRNGKeyArray | None = None) -> Float[Array, "h2 w2 o"]:
        """`key=None` means inference (no stochastic depth)."""
        h = self._act(x) * jnp.asarray(self.beta, x.dtype)
        if self.stride > 1:  # average-pool downsample; image sizes are multiples of 32, so no padding is needed
            s = self.stride
            pooled = h.reshape(h.shape[0] // s, s, h.shape[1] // s, s, h.shape[2]).mean(axis=(1, 3))
            shortcut = self.conv_shortcut(pooled) if self.conv_shortcut is not None else pooled
        elif self.conv_shortcut is not None:
            shortcut = self.conv_shortcut(h)
        else:
            shortcut = x
        r = self.conv0(h)
        r = self.conv1(self._act(r))
        r = self.conv1b(self._act(r))
        r = self.conv2(self._act(r))
        r = 2.0 * self.se(r) * r  # x2 restores the variance halved by a sigmoid gate of ~0.5 at init
        if key is not None and self.drop_path_rate > 0.0:
            keep = jr.bernoulli(key, 1.0 - self.drop_path_rate)
            r = r * keep.astype(r.dtype)
        r = r * self.skip_gain.astype(r.dtype)
        return r * jnp.asarray(self.alpha, r.dtype) + shortcut

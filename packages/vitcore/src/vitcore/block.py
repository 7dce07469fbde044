"""Pre-norm transformer block (timm layout: norm1, attn, norm2, mlp) with dropout and drop path."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Float, PRNGKeyArray, Real

from .attention import Attention
from .linear import Init, LayerNorm, Linear


def dropout(x: Float[Array, "..."], rate: float, key: PRNGKeyArray | None) -> Float[Array, "..."]:
    """Inverted dropout; identity when `key` is None or `rate` is 0."""
    if key is None or rate == 0.0:
        return x
    keep = jr.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


def drop_path(
    x: Float[Array, "n d"], rate: Real[Array, ""] | float, key: PRNGKeyArray | None
) -> Float[Array, "n d"]:
    """Stochastic depth for one example: drop the whole residual branch with probability `rate`.

    `rate` may be traced (a scanned stack passes each layer's rate as data).
    """
    if key is None or (isinstance(rate, float) and rate == 0.0):
        return x
    rate = jnp.asarray(rate, jnp.float32)
    keep = jr.bernoulli(key, 1.0 - rate)
    scale = (keep.astype(jnp.float32) / jnp.maximum(1.0 - rate, 1e-6)).astype(x.dtype)
    return x * scale


def gelu(x: Float[Array, "..."]) -> Float[Array, "..."]:
    """Exact GELU, x * Phi(x) = x / 2 * (1 + erf(x / sqrt(2))): torch.nn.GELU()'s formula, as in timm.

    Not `jax.nn.gelu(approximate=False)`, which goes through erfc: XLA expands erfc into two polynomial
    branches plus an exp and a select per element, where erf is one rational polynomial.
    """
    return x * 0.5 * (1.0 + jax.lax.erf(x * (1.0 / math.sqrt(2.0))))


class Mlp(eqx.Module):
    fc1: Linear
    fc2: Linear

    def __init__(self, width: int, hidden: int, *, key: PRNGKeyArray, init: Init):
        k1, k2 = jr.split(key)
        self.fc1 = Linear(width, hidden, key=k1, init=init)
        self.fc2 = Linear(hidden, width, key=k2, init=init)

    def __call__(
        self, x: Float[Array, "n d"], *, rate: float = 0.0, key: PRNGKeyArray | None = None
    ) -> Float[Array, "n d"]:
        k1, k2 = jr.split(key) if key is not None else (None, None)
        hidden = dropout(gelu(self.fc1(x)), rate, k1)
        return dropout(self.fc2(hidden), rate, k2)


class Block(eqx.Module):
    """x + drop_path(attn(norm1(x))), then x + drop_path(mlp(norm2(x)))."""

    norm1: LayerNorm
    attn: Attention
    norm2: LayerNorm
    mlp: Mlp
    dropout_rate: float = eqx.field(static=True)

    def __init__(
        self,
        width: int,
        num_heads: int,
        mlp_width: int,
        *,
        key: PRNGKeyArray,
        qkv_bias: bool = True,
        eps: float = 1e-6,
        dropout_rate: float = 0.0,
        init: Init = "trunc_normal",
    ):
        k_attn, k_mlp = jr.split(key)
        self.norm1 = LayerNorm(width, eps=eps)
        self.attn = Attention(width, num_heads, key=k_attn, qkv_bias=qkv_bias, init=init)
        self.norm2 = LayerNorm(width, eps=eps)
        self.mlp = Mlp(width, mlp_width, key=k_mlp, init=init)
        self.dropout_rate = dropout_rate

    def __call__(
        self,
        x: Float[Array, "n d"],
        *,
        drop_path_rate: Real[Array, ""] | float = 0.0,
        mask: Bool[Array, " n"] | None = None,
        key: PRNGKeyArray | None = None,
    ) -> Float[Array, "n d"]:
        """`key=None` means inference (no dropout, no drop path)."""
        keys = jr.split(key, 4) if key is not None else (None,) * 4
        branch = dropout(self.attn(self.norm1(x), mask=mask), self.dropout_rate, keys[0])
        x = x + drop_path(branch, drop_path_rate, keys[1])
        branch = self.mlp(self.norm2(x), rate=self.dropout_rate, key=keys[2])
        return x + drop_path(branch, drop_path_rate, keys[3])

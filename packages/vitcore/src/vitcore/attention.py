"""Multi-head self-attention on one example's tokens (batch with `jax.vmap`)."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from .linear import Init, Linear


class Attention(eqx.Module):
    """timm-layout attention: one fused `qkv` projection, softmax in float32, output projection `proj`."""

    qkv: Linear
    proj: Linear
    num_heads: int = eqx.field(static=True)

    def __init__(self, width: int, num_heads: int, *, key: PRNGKeyArray, qkv_bias: bool = True, init: Init):
        k_qkv, k_proj = jax.random.split(key)
        self.qkv = Linear(width, 3 * width, key=k_qkv, use_bias=qkv_bias, init=init)
        self.proj = Linear(width, width, key=k_proj, init=init)
        self.num_heads = num_heads

    def __call__(
        self, x: Float[Array, "n d"], *, mask: Bool[Array, " n"] | None = None
    ) -> Float[Array, "n d"]:
        """`mask` (True = attend) hides padded keys, e.g. padding in a caption."""
        n, d = x.shape
        h = self.num_heads
        qkv = self.qkv(x).reshape(n, 3, h, d // h)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
        q = q * (d // h) ** -0.5
        logits = jnp.einsum("qhe,khe->hqk", q, k).astype(jnp.float32)
        if mask is not None:
            logits = jnp.where(mask[None, None, :], logits, jnp.finfo(jnp.float32).min)
        weights = jax.nn.softmax(logits, axis=-1).astype(x.dtype)
        out = jnp.einsum("hqk,khe->qhe", weights, v).reshape(n, d)
        return self.proj(out)

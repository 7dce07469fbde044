"""Multi-head self-attention on one example's tokens (batch with `jax.vmap`), and its attention kernel."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from .linear import Init, Linear

_CUDNN_DTYPES = (jnp.bfloat16, jnp.float16)


def dot_product_attention(
    q: Float[Array, "n heads e"],
    k: Float[Array, "n heads e"],
    v: Float[Array, "n heads e"],
    *,
    mask: Bool[Array, " n"] | None = None,
) -> Float[Array, "n heads e"]:
    """softmax(q k^T / sqrt(e)) v for each head of one example, the softmax in float32.

    `mask` (True = attend) hides keys. Layout is token-major, as `jax.nn.dot_product_attention` takes it
    (without the batch axis). The kernel is chosen by the default backend when traced: on a GPU with
    bfloat16/float16 inputs, no mask and a head size that is a multiple of 8 up to 128, cuDNN's fused
    flash-attention kernel (`_fused_attention`; checked on an H200 with JAX 0.11.2, where it made a ViT-B/16
    bfloat16 training step faster than the XLA kernel); everywhere else `_softmax_attention`, plain XLA with a
    hand-written backward.
    """
    e = q.shape[-1]
    if jax.default_backend() == "gpu" and q.dtype in _CUDNN_DTYPES and mask is None and e % 8 == 0 and e <= 128:
        return _fused_attention(q, k, v, implementation="cudnn")
    # Head-major [heads, n, e] so every matmul below has its batch axis leading (what XLA:CPU's dot kernels
    # take without a layout copy); q is scaled before q k^T, on n x e values rather than n x n.
    q, k, v = (t.transpose(1, 0, 2) for t in (q * jnp.asarray(e**-0.5, q.dtype), k, v))
    return _softmax_attention(q, k, v, mask).transpose(1, 0, 2)


def _fused_attention(
    q: Float[Array, "n heads e"], k: Float[Array, "n heads e"], v: Float[Array, "n heads e"], *, implementation: str
) -> Float[Array, "n heads e"]:
    """`jax.nn.dot_product_attention`, padded to an even length: cuDNN's backward takes even lengths only
    (197 tokens = 196 patches + the class token). The extra key is hidden by its length, the extra query's
    row dropped."""
    n = q.shape[0]
    if n % 2 == 0:
        return jax.nn.dot_product_attention(q, k, v, implementation=implementation)
    q, k, v = (jnp.pad(t, ((0, 1), (0, 0), (0, 0))) for t in (q, k, v))
    lengths = jnp.full((1,), n, jnp.int32)
    return jax.nn.dot_product_attention(
        q, k, v, key_value_seq_lengths=lengths, implementation=implementation
    )[:n]


@jax.custom_vjp
def _softmax_attention(q, k, v, mask):
    """softmax(q k^T) v on head-major [heads, n, e] arrays (q already scaled).

    The backward is written out (FlashAttention's equations, with the softmax saved rather than recomputed):
    autodiff of the forward made XLA:CPU materialise broadcasts of the softmax denominator, pad dq/dk/dv
    into the fused qkv layout, and transpose n x n arrays; this form avoids the first two and, for dk,
    transposes q (n x e) rather than the n x n logits gradient.
    Reverse mode only (a custom VJP): `jax.jvp` through it raises.
    """
    return _softmax_attention_fwd(q, k, v, mask)[0]


def _softmax_attention_fwd(q, k, v, mask):
    logits = jnp.einsum("hqe,hke->hqk", q, k, preferred_element_type=jnp.float32)
    if mask is not None:
        logits = jnp.where(mask[None, None, :], logits, jnp.finfo(jnp.float32).min)
    weights = jax.nn.softmax(logits, axis=-1)  # float32, kept for the backward
    out = jnp.einsum("hqk,hke->hqe", weights.astype(v.dtype), v)
    return out, (q, k, v, weights)


def _softmax_attention_bwd(residuals, d_out):
    q, k, v, weights = residuals
    d_v = jnp.einsum("hqk,hqe->hke", weights.astype(d_out.dtype), d_out)
    d_weights = jnp.einsum("hqe,hke->hqk", d_out, v, preferred_element_type=jnp.float32)
    # Softmax backward: d_logits = w * (d_w - sum_k(d_w * w)). Masked keys have w = 0, so no gradient.
    d_logits = weights * (d_weights - jnp.sum(d_weights * weights, axis=-1, keepdims=True))
    d_logits = d_logits.astype(q.dtype)
    d_q = jnp.einsum("hqk,hke->hqe", d_logits, k)
    # d_k^T = q^T d_logits, then transposed: the copy XLA makes for the contraction is of q (n x e), not of
    # d_logits (n x n).
    d_k = jnp.einsum("hqe,hqk->hek", q, d_logits).transpose(0, 2, 1)
    return d_q, d_k, d_v, None


_softmax_attention.defvjp(_softmax_attention_fwd, _softmax_attention_bwd)


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
        qkv = self.qkv(x).reshape(n, 3, self.num_heads, d // self.num_heads)
        out = dot_product_attention(qkv[:, 0], qkv[:, 1], qkv[:, 2], mask=mask)
        return self.proj(out.reshape(n, d))

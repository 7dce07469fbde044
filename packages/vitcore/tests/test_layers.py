"""Hand-written gradients (LayerNorm's and attention's custom VJPs) and GELU against float64 numpy references."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from vitcore.attention import _fused_attention, dot_product_attention
from vitcore.block import gelu
from vitcore.linear import layer_norm

_erf = np.vectorize(math.erf)


def _ln64(x, scale, bias, eps):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * scale + bias


def _numeric_grad(f, x, h=1e-6):
    """Central differences of a float64 scalar function, one entry at a time."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (f(up) - f(down)) / (2 * h)
    return grad


def test_layer_norm_value_and_gradient_match_float64_finite_differences():
    rng = np.random.default_rng(0)
    x, w = rng.normal(1.0, 2.0, (2, 3, 8)), rng.normal(size=(2, 3, 8))
    scale, bias, eps = rng.normal(size=8), rng.normal(size=8), 1e-6

    def loss(x, scale, bias):
        return jnp.sum(jnp.asarray(w, jnp.float32) * layer_norm(x, scale, bias, eps))

    f32 = [jnp.asarray(a, jnp.float32) for a in (x, scale, bias)]
    np.testing.assert_allclose(layer_norm(*f32, eps), _ln64(x, scale, bias, eps), atol=2e-5)
    dx, dscale, dbias = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(*f32)
    np.testing.assert_allclose(dx, _numeric_grad(lambda v: np.sum(w * _ln64(v, scale, bias, eps)), x), atol=1e-4)
    np.testing.assert_allclose(
        dscale, _numeric_grad(lambda v: np.sum(w * _ln64(x, v, bias, eps)), scale), atol=1e-4
    )
    np.testing.assert_allclose(dbias, _numeric_grad(lambda v: np.sum(w * _ln64(x, scale, v, eps)), bias), atol=1e-4)


def test_layer_norm_keeps_the_input_dtype_in_both_directions():
    x = jax.random.normal(jax.random.key(0), (4, 16), jnp.bfloat16)
    scale, bias = jnp.ones(16, jnp.float32), jnp.zeros(16, jnp.float32)
    y, vjp = jax.vjp(lambda x, s, b: layer_norm(x, s, b, 1e-6), x, scale, bias)
    dx, dscale, dbias = vjp(jnp.ones_like(y))
    assert (y.dtype, dx.dtype, dscale.dtype, dbias.dtype) == (jnp.bfloat16, jnp.bfloat16, jnp.float32, jnp.float32)


def test_gelu_is_the_exact_erf_form_with_its_derivative():
    x = np.linspace(-6.0, 6.0, 49)
    ref = 0.5 * x * (1 + _erf(x / math.sqrt(2)))
    np.testing.assert_allclose(gelu(jnp.asarray(x, jnp.float32)), ref, atol=1e-6)
    d_ref = 0.5 * (1 + _erf(x / math.sqrt(2))) + x * np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)
    d = jax.vmap(jax.grad(gelu))(jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(d, d_ref, atol=1e-6)


def _attention64(q, k, v, mask):
    logits = np.einsum("qhe,khe->hqk", q, k) / np.sqrt(q.shape[-1])
    logits = np.where(mask[None, None, :], logits, -np.inf)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    return np.einsum("hqk,khe->qhe", w / w.sum(-1, keepdims=True), v)


@pytest.mark.parametrize("masked", [False, True])
def test_attention_value_and_gradients_match_float64_finite_differences(masked):
    rng = np.random.default_rng(1)
    q, k, v, w = (rng.normal(size=(5, 2, 4)) for _ in range(4))
    mask = np.array([True, True, False, True, not masked])
    jmask = jnp.asarray(mask) if masked else None
    mask = mask if masked else np.ones(5, bool)

    def loss(q, k, v):
        return jnp.sum(jnp.asarray(w, jnp.float32) * dot_product_attention(q, k, v, mask=jmask))

    f32 = [jnp.asarray(a, jnp.float32) for a in (q, k, v)]
    np.testing.assert_allclose(dot_product_attention(*f32, mask=jmask), _attention64(q, k, v, mask), atol=1e-5)
    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(*f32)
    refs = (
        _numeric_grad(lambda a: np.sum(w * _attention64(a, k, v, mask)), q),
        _numeric_grad(lambda a: np.sum(w * _attention64(q, a, v, mask)), k),
        _numeric_grad(lambda a: np.sum(w * _attention64(q, k, a, mask)), v),
    )
    for got, ref in zip(grads, refs, strict=True):
        np.testing.assert_allclose(got, ref, atol=1e-4)
    if masked:  # a hidden key gets no gradient at all
        assert np.all(np.asarray(grads[1])[2] == 0) and np.all(np.asarray(grads[2])[2] == 0)


def test_attention_keeps_the_input_dtype_in_both_directions():
    q = jax.random.normal(jax.random.key(0), (6, 2, 8), jnp.bfloat16)
    out, vjp = jax.vjp(lambda q, k, v: dot_product_attention(q, k, v), q, q, q)
    assert out.dtype == jnp.bfloat16 and all(g.dtype == jnp.bfloat16 for g in vjp(jnp.ones_like(out)))


def test_fused_attention_pads_an_odd_length_without_changing_the_result():
    # The GPU path's padding (cuDNN's backward needs even lengths), run through the XLA implementation here.
    rng = np.random.default_rng(2)
    q, k, v = (rng.normal(size=(5, 2, 8)) for _ in range(3))
    got = _fused_attention(*(jnp.asarray(a, jnp.float32) for a in (q, k, v)), implementation="xla")
    np.testing.assert_allclose(got, _attention64(q, k, v, np.ones(5, bool)), atol=1e-5)

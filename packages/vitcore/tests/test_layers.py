"""Hand-written gradients (LayerNorm's custom VJP) and GELU against float64 numpy references."""

import math

import jax
import jax.numpy as jnp
import numpy as np
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

"""Pixel cross-entropy with ignore index against a float64 numpy reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from segtransfer.segmentation.loss import pixel_cross_entropy


def _reference(logits, labels, ignore_index=255):
    logits = logits.astype(np.float64)
    m = logits.max(-1, keepdims=True)
    logz = m[..., 0] + np.log(np.exp(logits - m).sum(-1))
    total, count = 0.0, 0
    for idx in np.ndindex(labels.shape):
        if labels[idx] != ignore_index:
            total += logz[idx] - logits[idx + (labels[idx],)]
            count += 1
    return total / count


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_matches_float64_reference(dtype):
    rng = np.random.default_rng(0)
    logits = (3 * rng.standard_normal((2, 5, 6, 4))).astype(np.float32)
    labels = rng.integers(0, 4, size=(2, 5, 6)).astype(np.int32)
    labels[rng.random(labels.shape) < 0.3] = 255
    x = jnp.asarray(logits, dtype=dtype)
    got = jax.jit(pixel_cross_entropy)(x, jnp.asarray(labels))
    assert got.dtype == jnp.float32
    ref = _reference(np.asarray(x.astype(jnp.float32)), labels)
    np.testing.assert_allclose(float(got), ref, rtol=1e-5)


def test_ignored_pixels_get_no_gradient_and_all_ignored_is_zero():
    rng = np.random.default_rng(1)
    logits = jnp.asarray(rng.standard_normal((1, 3, 3, 5)), dtype=jnp.float32)
    labels = jnp.full((1, 3, 3), 255, jnp.int32).at[0, 1, 1].set(2)
    grad = jax.grad(pixel_cross_entropy)(logits, labels)
    mask = np.zeros((1, 3, 3), bool)
    mask[0, 1, 1] = True
    assert np.all(np.asarray(grad)[~mask] == 0)
    probs = np.asarray(jax.nn.softmax(logits[0, 1, 1]), np.float64)
    np.testing.assert_allclose(np.asarray(grad)[0, 1, 1], probs - np.eye(5)[2], atol=1e-6)
    none = jnp.full((1, 3, 3), 255, jnp.int32)
    assert float(pixel_cross_entropy(logits, none)) == 0.0


def test_shape_mismatch_raises():
    # jaxtyping (in tests) or our own check (without it) both name the argument
    with pytest.raises((ValueError, TypeError), match="labels"):
        pixel_cross_entropy(jnp.zeros((1, 2, 2, 3)), jnp.zeros((1, 2, 3), jnp.int32))

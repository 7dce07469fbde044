"""per_tensor_clip_by_norm against a float64 numpy transcription of DINO's ``utils.clip_gradients``."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from runloop.optim.per_tensor_clip import per_tensor_clip_by_norm


def dino_clip_gradients(grads, clip):
    """facebookresearch/dino utils.clip_gradients, on a dict of numpy arrays (float64)."""
    out = {}
    for name, g in grads.items():
        g = np.asarray(g, np.float64)
        param_norm = np.sqrt(np.sum(g * g))
        clip_coef = clip / (param_norm + 1e-6)
        out[name] = g * clip_coef if clip_coef < 1 else g
    return out


def _grads():
    rng = np.random.default_rng(0)
    return {
        "big": rng.normal(size=(6, 4)) * 3.0,  # norm ~ 15: clipped
        "small": rng.normal(size=(5,)) * 0.01,  # norm ~ 0.02: untouched
        "conv": rng.normal(size=(3, 2, 3, 3)),  # norm ~ 7: clipped
        "zero": np.zeros((2, 2)),  # finite coefficient, stays zero
        "scalar": np.asarray(-4.0),  # clipped to -1
    }


@pytest.mark.parametrize("clip", [1.0, 0.1])
def test_matches_dinos_clip_gradients(clip):
    grads = _grads()
    tx = per_tensor_clip_by_norm(clip)
    ours, _ = jax.jit(tx.update)({k: jnp.asarray(v, jnp.float32) for k, v in grads.items()}, tx.init(None))
    ref = dino_clip_gradients(grads, clip)
    for k in grads:
        np.testing.assert_allclose(np.asarray(ours[k]), ref[k], rtol=1e-6, atol=1e-9)
        assert np.linalg.norm(np.asarray(ours[k], np.float64)) <= clip + 1e-6
    np.testing.assert_array_equal(np.asarray(ours["small"]), np.asarray(grads["small"], np.float32))


def test_differs_from_a_global_clip_and_keeps_dtypes():
    grads = {k: jnp.asarray(v, jnp.float32) for k, v in _grads().items()}
    per_tensor, _ = per_tensor_clip_by_norm(1.0).update(grads, optax.EmptyState())
    global_, _ = optax.clip_by_global_norm(1.0).update(grads, optax.EmptyState())
    # The global clip shrinks the small tensor with the big ones; the per-tensor clip leaves it alone.
    assert float(jnp.linalg.norm(global_["small"])) < 0.1 * float(jnp.linalg.norm(per_tensor["small"]))
    half, _ = per_tensor_clip_by_norm(1.0).update({"w": jnp.full((4,), 3.0, jnp.bfloat16)}, optax.EmptyState())
    assert half["w"].dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(half["w"], np.float32), 0.5, rtol=1e-2)


@pytest.mark.parametrize("bad", [0.0, -1.0, True])
def test_bad_threshold_names_the_argument(bad, without_jaxtyping):
    with pytest.raises(ValueError, match=rf"max_norm={bad!r}; expected a number > 0"):
        per_tensor_clip_by_norm(bad)

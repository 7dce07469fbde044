"""AGC against a float64 numpy re-derivation of DeepMind's `unitwise_norm` / `my_clip` (nfnets/agc_optax.py),
which is written for haiku layouts (output axis last): our output-first arrays are transposed into it."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from runloop.optim.agc import adaptive_grad_clip, unitwise_norm


def dm_unitwise_norm(x):
    """DeepMind's unitwise_norm for haiku layouts: IO linears, HWIO convs, whole-array norm for vectors."""
    if np.squeeze(x).ndim <= 1:
        return np.sqrt(np.sum(x**2))
    axis = 0 if x.ndim in (2, 3) else (0, 1, 2)
    return np.sqrt(np.sum(x**2, axis=axis, keepdims=True))


def dm_clip(grad, param, clipping, eps):
    grad_norm, param_norm = dm_unitwise_norm(grad), dm_unitwise_norm(param)
    max_norm = clipping * np.maximum(param_norm, eps)
    clipped = grad * (max_norm / np.maximum(grad_norm, 1e-6))
    return np.where(grad_norm < max_norm, grad, clipped)


# Our layout -> DeepMind's (and back: both transposes are their own inverse's transpose).
TO_DM = {"conv": (2, 3, 1, 0), "linear": (1, 0), "bias": None, "gain": None, "skip_gain": None}


def _tree(rng):
    params = {
        "conv": rng.normal(size=(6, 4, 3, 3)),  # OIHW
        "linear": rng.normal(size=(5, 7)),  # [out, in]
        "bias": rng.normal(size=(5,)),
        "gain": np.ones(6),
        "skip_gain": np.zeros(()),  # zero-initialised: max norm = clipping * eps
    }
    # Per unit, a gradient either far below or far above the clip threshold, so both branches are exercised.
    grads = {}
    for name, p in params.items():
        scale = rng.choice([1e-4, 10.0], size=p.shape[:1] + (1,) * (p.ndim - 1)) if p.ndim > 1 else 1.0
        grads[name] = rng.normal(size=p.shape) * scale
    return params, grads


def _dm_reference(params, grads, clipping, eps):
    out = {}
    for name, perm in TO_DM.items():
        if perm is None:
            out[name] = dm_clip(grads[name], params[name], clipping, eps)
        else:
            clipped = dm_clip(grads[name].transpose(perm), params[name].transpose(perm), clipping, eps)
            out[name] = clipped.transpose(np.argsort(perm))
    return out


def test_agc_matches_deepmind_reference():
    params, grads = _tree(np.random.default_rng(0))
    tx = adaptive_grad_clip(0.05)
    as32 = lambda t: jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), t)  # noqa: E731
    updates, _ = jax.jit(tx.update)(as32(grads), tx.init(as32(params)), as32(params))
    want = _dm_reference(params, grads, 0.05, 1e-3)
    for name in TO_DM:
        np.testing.assert_allclose(np.asarray(updates[name]), want[name], rtol=1e-5, atol=1e-9, err_msg=name)
    # Both branches happened: some units were clipped, some passed through unchanged.
    conv_changed = ~np.isclose(np.asarray(updates["conv"]), grads["conv"], rtol=1e-6).all(axis=(1, 2, 3))
    assert conv_changed.any() and not conv_changed.all()
    # A clipped unit ends exactly at the threshold: ||G|| = clipping * ||W||.
    i = int(np.argmax(conv_changed))
    ratio = np.linalg.norm(np.asarray(updates["conv"])[i]) / np.linalg.norm(params["conv"][i])
    np.testing.assert_allclose(ratio, 0.05, rtol=1e-5)


def test_unitwise_norm_reduces_all_but_the_output_axis():
    x = np.random.default_rng(1).normal(size=(3, 4, 2, 2))
    np.testing.assert_allclose(
        np.asarray(unitwise_norm(jnp.asarray(x, jnp.float32)))[:, 0, 0, 0],
        np.sqrt((x**2).sum(axis=(1, 2, 3))),
        rtol=1e-6,
    )
    other = np.asarray(unitwise_norm(jnp.asarray(x, jnp.float32), output_axis=-1))
    np.testing.assert_allclose(other[0, 0, 0], np.sqrt((x**2).sum(axis=(0, 1, 2))), rtol=1e-6)


def test_agc_composes_with_masked_and_needs_params():
    params, grads = _tree(np.random.default_rng(2))
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
    grads = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), grads)
    # The paper leaves the final linear layer unclipped: the caller masks it out.
    mask = {name: name != "linear" for name in params}
    tx = optax.chain(optax.masked(adaptive_grad_clip(0.05), mask), optax.sgd(1.0))
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_array_equal(np.asarray(updates["linear"]), -np.asarray(grads["linear"]))
    assert not np.allclose(np.asarray(updates["conv"]), -np.asarray(grads["conv"]))
    with pytest.raises(ValueError, match="adaptive_grad_clip needs params"):
        adaptive_grad_clip(0.05).update(grads, optax.EmptyState())
    with pytest.raises(ValueError, match="clipping=0.0"):
        adaptive_grad_clip(0.0)


def _stacked_case(rng, depth=3):
    """Stacked block weights as vitcore's scan_layers keeps them: [depth, out, in] linears, [depth, d] biases,
    [depth, out, in, kh, kw] convolutions; per layer and unit, gradients far below or far above the threshold."""
    params = {"linear": rng.normal(size=(depth, 5, 7)), "bias": rng.normal(size=(depth, 5)),
              "conv": rng.normal(size=(depth, 6, 4, 3, 3))}
    grads = {name: rng.normal(size=p.shape) * rng.choice([1e-4, 10.0], size=p.shape[:2] + (1,) * (p.ndim - 2))
             for name, p in params.items()}
    return params, grads


def _dm_per_layer(params, grads, clipping, eps):
    """DeepMind's rule applied to each layer of the stack on its own (each slice transposed into haiku layout)."""
    perms = {"linear": (1, 0), "bias": None, "conv": (2, 3, 1, 0)}
    out = {}
    for name, perm in perms.items():
        layers = []
        for g, p in zip(grads[name], params[name], strict=True):
            if perm is None:
                layers.append(dm_clip(g, p, clipping, eps))
            else:
                layers.append(dm_clip(g.transpose(perm), p.transpose(perm), clipping, eps).transpose(np.argsort(perm)))
        out[name] = np.stack(layers)
    return out


@pytest.mark.parametrize("as_tree", [False, True])
def test_agc_on_stacked_weights_clips_each_layer_and_unit(as_tree):
    params, grads = _stacked_case(np.random.default_rng(3))
    stacked = {name: 1 for name in params} if as_tree else (lambda p: jax.tree.map(lambda _: 1, p))
    tx = adaptive_grad_clip(0.05, stacked_axes=stacked)
    as32 = lambda t: jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), t)  # noqa: E731
    updates, _ = jax.jit(tx.update)(as32(grads), tx.init(as32(params)), as32(params))
    want = _dm_per_layer(params, grads, 0.05, 1e-3)
    for name in params:
        np.testing.assert_allclose(np.asarray(updates[name]), want[name], rtol=1e-5, atol=1e-9, err_msg=name)
    # Without the stacking axis, a layer would be one unit (the old behaviour): the result differs.
    flat, _ = adaptive_grad_clip(0.05).update(as32(grads), optax.EmptyState(), as32(params))
    assert not np.allclose(np.asarray(flat["linear"]), want["linear"], rtol=1e-3)


def test_unitwise_norm_keeps_the_stacking_axes():
    x = np.random.default_rng(4).normal(size=(2, 3, 4))
    np.testing.assert_allclose(np.asarray(unitwise_norm(jnp.asarray(x, jnp.float32), stacked_axes=1))[..., 0],
                               np.sqrt((x**2).sum(axis=2)), rtol=1e-6)
    # A stacked vector is one unit per layer; a stacked scalar is its absolute value.
    v = x[:, :, 0]
    np.testing.assert_allclose(np.asarray(unitwise_norm(jnp.asarray(v, jnp.float32), stacked_axes=1))[:, 0],
                               np.sqrt((v**2).sum(axis=1)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(unitwise_norm(jnp.asarray(v[:, 0], jnp.float32), stacked_axes=1)),
                               np.abs(v[:, 0]), rtol=1e-6)
    with pytest.raises(ValueError, match="stacked_axes=4"):
        unitwise_norm(jnp.asarray(x, jnp.float32), stacked_axes=4)

"""SAM against the two-step formula of Foret et al. 2021, re-derived in float64 numpy on logistic regression:
whole-batch, and per device (google-research/sam) on the root conftest's 4 fake CPU devices."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from runloop import make_mesh, put_batch, replicated
from runloop.optim.sam import sam, sam_perturbation, sharded_grad_fn

RNG = np.random.default_rng(0)
X = RNG.normal(size=(16, 5))
Y = np.sign(RNG.normal(size=16))
W0 = {"w": RNG.normal(size=5), "b": np.array(0.3)}


def np_grad(p, x=X, y=Y):
    """Gradient of mean(log(1 + exp(-y (x w + b)))), by hand."""
    z = x @ p["w"] + p["b"]
    s = -y / (1.0 + np.exp(y * z))  # d loss_i / d z_i
    return {"w": x.T @ s / len(y), "b": np.mean(s)}


def jax_loss(p):
    z = jnp.asarray(X, jnp.float32) @ p["w"] + p["b"]
    return jnp.mean(jnp.logaddexp(0.0, -jnp.asarray(Y, jnp.float32) * z))


def np_sam_grad(p, rho):
    g = np_grad(p)
    norm = np.sqrt(sum(np.sum(v**2) for v in g.values()))
    return np_grad({k: p[k] + rho * g[k] / norm for k in p})


def _f32(tree):
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), tree)


def test_sam_then_sgd_is_the_two_step_formula():
    rho, lr = 0.5, 0.1
    params = _f32(W0)
    tx = optax.chain(sam(rho), optax.sgd(lr))
    grad_fn = jax.grad(jax_loss)

    @jax.jit
    def step(params, state):
        updates, state = tx.update(grad_fn(params), state, params, grad_fn=grad_fn)
        return optax.apply_updates(params, updates), state

    new, _ = step(params, tx.init(params))
    want = np_sam_grad(W0, rho)
    for k in W0:
        np.testing.assert_allclose(np.asarray(new[k]), W0[k] - lr * want[k], rtol=1e-5, atol=1e-6, err_msg=k)
    # Not the plain gradient step: the perturbation matters at this rho.
    plain = np_grad(W0)
    assert not np.allclose(want["w"], plain["w"], rtol=1e-3)


def test_sam_feeds_the_perturbed_gradient_to_adam():
    rho = 0.2
    params = _f32(W0)
    tx = optax.chain(sam(rho), optax.adam(1e-2))
    grad_fn = jax.grad(jax_loss)
    adam = optax.adam(1e-2)
    with jax.numpy_dtype_promotion("standard"):  # optax's bias correction mixes a float and an int32 count
        updates, _ = tx.update(grad_fn(params), tx.init(params), params, grad_fn=grad_fn)
        want, _ = adam.update(_f32(np_sam_grad(W0, rho)), adam.init(params))
    for k in W0:
        np.testing.assert_allclose(np.asarray(updates[k]), np.asarray(want[k]), rtol=1e-4, err_msg=k)


def test_perturbation_has_norm_rho_and_zero_gradient_is_safe():
    g = _f32(np_grad(W0))
    e = sam_perturbation(g, 0.05)
    np.testing.assert_allclose(float(optax.tree.norm(e)), 0.05, rtol=1e-6)
    zero = sam_perturbation(jax.tree.map(jnp.zeros_like, g), 0.05)
    assert all(np.all(np.asarray(v) == 0) for v in jax.tree.leaves(zero))


def test_sam_errors_name_what_is_missing():
    params = _f32(W0)
    tx = sam(0.05)
    with pytest.raises(ValueError, match="sam needs params and grad_fn"):
        tx.update(params, tx.init(params), params)
    with pytest.raises(ValueError, match="rho=0"):
        sam(0.0)


def np_per_device_sam_grad(p, rho, shards):
    """google-research/sam's train step: each device's shard ascends along its own gradient, grads are pmean'd."""
    out = {k: np.zeros_like(np.asarray(v, float)) for k, v in p.items()}
    for x, y in zip(np.split(X, shards), np.split(Y, shards), strict=True):
        g = np_grad(p, x, y)
        norm = np.sqrt(sum(np.sum(v**2) for v in g.values()))
        g_sam = np_grad({k: p[k] + rho * g[k] / norm for k in p}, x, y)
        out = {k: out[k] + g_sam[k] / shards for k in p}
    return out


def test_per_device_sam_on_sharded_batch_matches_the_reference():
    assert jax.device_count() == 4, "the root conftest sets 4 fake CPU devices"
    rho, lr, shards = 0.5, 0.1, jax.device_count()
    mesh = make_mesh()
    batch = put_batch({"x": X.astype(np.float32), "y": Y.astype(np.float32)}, mesh)
    params = jax.device_put(_f32(W0), replicated(mesh))
    tx = optax.chain(sam(rho, per_device=True), optax.sgd(lr))

    def loss(p, part, shard_index):
        del shard_index
        return jnp.mean(jnp.logaddexp(0.0, -part["y"] * (part["x"] @ p["w"] + p["b"])))

    @jax.jit
    def step(params, state, batch):
        shard_grad_fn = sharded_grad_fn(loss, batch, shards)
        shard_grads = shard_grad_fn(jax.tree.map(lambda p: jnp.broadcast_to(p, (shards, *p.shape)), params))
        grads = jax.tree.map(lambda g: jnp.mean(g, axis=0), shard_grads)
        updates, state = tx.update(grads, state, params, shard_grad_fn=shard_grad_fn, shard_grads=shard_grads)
        return optax.apply_updates(params, updates), state

    new, _ = step(params, tx.init(params), batch)
    want = np_per_device_sam_grad(W0, rho, shards)
    for k in W0:
        np.testing.assert_allclose(np.asarray(new[k]), W0[k] - lr * want[k], rtol=1e-5, atol=1e-6, err_msg=k)
    # Not the whole-batch perturbation: per-device ascent directions differ from the global one here.
    whole = np_sam_grad(W0, rho)
    assert not np.allclose(want["w"], whole["w"], rtol=1e-3)


def test_per_device_sam_errors_name_what_is_missing():
    params = _f32(W0)
    tx = sam(0.05, per_device=True)
    with pytest.raises(ValueError, match="needs params, shard_grad_fn and shard_grads"):
        tx.update(params, tx.init(params), params, grad_fn=jax.grad(jax_loss))
    with pytest.raises(ValueError, match="shards=3"):
        sharded_grad_fn(lambda p, b, i: 0.0, {"x": jnp.zeros((16, 2))}, 3)

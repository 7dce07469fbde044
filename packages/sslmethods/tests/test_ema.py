"""EMA teacher update and DINO centre update against closed forms."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from sslmethods.blocks import ema


def _mlp(seed):
    return eqx.nn.MLP(4, 3, 8, 1, key=jax.random.key(seed))


def test_ema_update_closed_form():
    teacher, student = _mlp(0), _mlp(1)
    tau = 0.9
    new = ema.ema_update(teacher, student, tau)
    leaves = [jax.tree.leaves(eqx.filter(m, eqx.is_array)) for m in (teacher, student, new)]
    assert len(leaves[0]) == 4
    for t, s, n in zip(*leaves, strict=True):
        expected = tau * np.asarray(t, np.float64) + (1 - tau) * np.asarray(s, np.float64)
        np.testing.assert_allclose(np.asarray(n), expected, rtol=1e-6, atol=1e-7)
    assert eqx.tree_equal(ema.ema_update(teacher, student, 1.0), teacher)
    assert eqx.tree_equal(ema.ema_update(teacher, student, 0.0), student)


def test_ema_update_traced_tau_keeps_dtypes_and_blocks_gradients():
    teacher = {"w": jnp.ones((3,), jnp.bfloat16), "count": jnp.array(5, jnp.int32)}
    student = {"w": jnp.zeros((3,), jnp.bfloat16), "count": jnp.array(7, jnp.int32)}
    new = jax.jit(ema.ema_update)(teacher, student, jnp.float32(0.75))
    assert new["w"].dtype == jnp.bfloat16 and int(new["count"]) == 5
    np.testing.assert_allclose(np.asarray(new["w"], np.float32), 0.75)
    g = jax.grad(lambda s: jnp.sum(ema.ema_update({"w": jnp.ones(3)}, {"w": s}, 0.5)["w"]))(jnp.ones(3))
    assert float(jnp.abs(g).sum()) == 0.0


def test_ema_update_rejects_mismatch():
    with pytest.raises(ValueError, match="pytree structures"):
        ema.ema_update({"a": jnp.ones(2)}, {"b": jnp.ones(2)}, 0.5)
    with pytest.raises(ValueError, match="tau"):
        ema.ema_update({"a": jnp.ones(2)}, {"a": jnp.ones(2)}, 1.5)


def test_dino_center_update_is_ema_of_global_teacher_mean():
    rng = np.random.default_rng(0)
    center = rng.normal(size=(16,))
    teacher = rng.normal(size=(2, 8, 16))  # 2 global crops x batch 8
    expected = 0.9 * center + 0.1 * teacher.reshape(-1, 16).mean(0)
    got = ema.dino_center_update(jnp.asarray(center, jnp.float32), jnp.asarray(teacher, jnp.float32))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-6)
    devices = jax.devices()
    if len(devices) >= 4:
        mesh = Mesh(np.asarray(devices[:4]), ("data",))
        sharded = jax.device_put(
            jnp.asarray(teacher, jnp.float32), NamedSharding(mesh, PartitionSpec(None, "data"))
        )
        got_sharded = jax.jit(ema.dino_center_update)(jnp.asarray(center, jnp.float32), sharded)
        np.testing.assert_allclose(np.asarray(got_sharded), expected, rtol=1e-5, atol=1e-6)

"""Data parallelism on the 4 fake CPU devices: a sharded step equals the single-device step on the same batch
(the engine's sharding helpers are tested in packages/runloop/tests/test_sharding.py)."""

import sys
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec

sys.path.insert(0, str(Path(__file__).parent))
from _engine_toys import SyntheticData, ToyTeacher  # noqa: E402
from runloop import batch_sharding, make_mesh, put_batch, shard_state, state_shardings  # noqa: E402
from sslmethods.pretrain.optim import OptimConfig, make_optimizer  # noqa: E402
from sslmethods.pretrain.step import make_train_step  # noqa: E402
from sslmethods.pretrain.train_state import decay_mask, init_pretrain_state  # noqa: E402

# Methods whose batch statistics must be global (the lead adds SimCLR and DINO here once they exist).
METHODS = {"toy_teacher": lambda: ToyTeacher(image_shape=(8, 8, 1), hidden=32)}


def _run(method, tx, state, batches, *, mesh=None, params="replicate"):
    if mesh is None:
        step = make_train_step(method, tx)
        for b in batches:
            state, metrics = step(state, b)
        return state, metrics
    shardings = state_shardings(state, mesh, params)
    state = shard_state(state, shardings)
    step = make_train_step(method, tx, state_sharding=shardings, batch_sharding=batch_sharding(mesh))
    for b in batches:
        state, metrics = step(state, put_batch(b, mesh))
    return state, metrics


@pytest.mark.parametrize("params", ["replicate", "fsdp"])
@pytest.mark.parametrize("name", sorted(METHODS))
def test_sharded_step_equals_single_device(name, params):
    assert jax.device_count() == 4, "the root conftest sets 4 fake CPU devices"
    method = METHODS[name]()
    trainable, _ = method.init(key=jax.random.key(0))
    tx = make_optimizer(OptimConfig(lr=1e-2, weight_decay=0.1, warmup_steps=1), 10, decay_mask(method, trainable))
    data = SyntheticData(16)
    batches = [data.batch_at(i) for i in range(3)]

    def fresh():
        return init_pretrain_state(method, tx, key=jax.random.key(0))

    single, m1 = _run(method, tx, fresh(), batches)
    mesh = make_mesh()
    sharded, m4 = _run(method, tx, fresh(), batches, mesh=mesh, params=params)
    hidden = sharded.model.hidden.weight
    assert len(hidden.sharding.device_set) == 4
    if params == "fsdp":
        assert hidden.sharding.spec == PartitionSpec(None, "data")  # (32, 64): the larger axis is split
    for a, b in zip(jax.tree.leaves(eqx.filter(single, eqx.is_inexact_array)),
                    jax.tree.leaves(eqx.filter(sharded, eqx.is_inexact_array)), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(m1["loss"]), float(m4["loss"]), rtol=1e-5)
    np.testing.assert_allclose(float(m1["grad_norm"]), float(m4["grad_norm"]), rtol=1e-5)

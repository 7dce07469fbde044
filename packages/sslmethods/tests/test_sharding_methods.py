"""The real global-batch methods on 4 fake CPU devices: SimCLR's negatives and DINO's centre come from the whole
batch, so a data-parallel step must equal the single-device step on the same global batch."""

import equinox as eqx
import jax
import numpy as np
import pytest
import vitcore
from runloop import batch_sharding, make_mesh, put_batch, shard_state, state_shardings
from sslmethods import DINO, SimCLR
from sslmethods.pretrain.optim import OptimConfig, make_optimizer
from sslmethods.pretrain.step import make_train_step
from sslmethods.pretrain.train_state import decay_mask, init_pretrain_state

BACKBONE = vitcore.get_config("vit-test")  # 32x32, patch 8, width 32, depth 2


def _methods():
    return {
        "simclr": SimCLR(backbone=BACKBONE, total_steps=10, proj_hidden_dim=32, proj_dim=16),
        "dino": DINO(backbone=BACKBONE, total_steps=10, num_local_crops=2, out_dim=64, hidden_dim=32,
                     bottleneck_dim=16),
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", ["simclr", "dino"])
def test_sharded_method_step_equals_single_device(name):
    assert jax.device_count() == 4
    method = _methods()[name]
    trainable, _ = method.init(key=jax.random.key(0))
    tx = make_optimizer(OptimConfig(lr=1e-3, weight_decay=0.05, warmup_steps=1), 10, decay_mask(method, trainable))
    images = np.random.default_rng(0).uniform(size=(8, 32, 32, 3)).astype(np.float32)
    batch = {"image": images}

    single_state, single = make_train_step(method, tx)(init_pretrain_state(method, tx, key=jax.random.key(1)), batch)

    mesh = make_mesh()
    state = init_pretrain_state(method, tx, key=jax.random.key(1))
    shardings = state_shardings(state, mesh, "replicate")
    step = make_train_step(method, tx, state_sharding=shardings, batch_sharding=batch_sharding(mesh))
    sharded_state, sharded = step(shard_state(state, shardings), put_batch(batch, mesh))

    assert len(sharded_state.step.sharding.device_set) == 4
    np.testing.assert_allclose(float(single["loss"]), float(sharded["loss"]), rtol=1e-5)
    np.testing.assert_allclose(float(single["grad_norm"]), float(sharded["grad_norm"]), rtol=1e-4)
    for a, b in zip(jax.tree.leaves(eqx.filter(single_state.model, eqx.is_inexact_array)),
                    jax.tree.leaves(eqx.filter(sharded_state.model, eqx.is_inexact_array)), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(eqx.filter(single_state.extra, eqx.is_inexact_array)),
                    jax.tree.leaves(eqx.filter(sharded_state.extra, eqx.is_inexact_array)), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)  # DINO teacher + centre

"""BYOL: the method contract, the symmetrised loss against float64 numpy, no gradient into the target, the target
EMA schedule through update_state, and the learning smoke test."""

import math
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import _method_checks as checks  # noqa: E402
from sslmethods.methods.byol import BYOL  # noqa: E402

TOTAL = 40


def _method(**overrides):
    kwargs = {"backbone": checks.CONTRACT_BACKBONE, "total_steps": TOTAL, "proj_hidden_dim": 48, "proj_dim": 16,
              "pred_hidden_dim": 40}
    return BYOL(**(kwargs | overrides))


def _np_unit(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _np_regression(p, z):
    """deepmind-research byol regression_loss, mean over the batch: |p/|p| - z/|z||^2 = 2 - 2 cos."""
    return np.mean(np.sum((_np_unit(p) - _np_unit(z)) ** 2, axis=1))


@pytest.fixture(scope="module")
def contract():
    return checks.check_contract(_method())


def test_contract_shapes_and_layout(contract):
    trainable, state, views, _, aux, _ = contract
    assert set(views) == {"view1", "view2"} and views["view2"].shape == (4, 32, 32, 3)
    assert [layer.weight.shape for layer in trainable.projector.layers] == [(48, 32), (16, 48)]
    assert [layer.weight.shape for layer in trainable.predictor.layers] == [(40, 16), (16, 40)]
    # The target holds backbone + projector only, initialised as a copy of the online network's.
    assert set(vars(state["target"])) == {"backbone", "head"}
    for t, o in zip(jax.tree.leaves(state["target"]), jax.tree.leaves(trainable.projection_network()),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(t), np.asarray(o))
    np.testing.assert_allclose(float(aux["metrics"]["tau"]), 0.996, rtol=1e-6)
    assert trainable.backbone.config.pos_embed == "sincos" and trainable.backbone.head is None  # MAE's ViT


def test_loss_is_the_symmetrised_regression_loss(contract):
    trainable, _, views, _, _, _ = contract
    method = _method()
    # A target different from the online network, so the two view orders differ.
    target = jax.tree.map(lambda x: x * 0.9 + 0.01, trainable.projection_network())
    loss, _ = eqx.filter_jit(method.loss)(trainable, {"target": target}, views, step=jnp.int32(0),
                                          key=jax.random.key(3))

    @eqx.filter_jit
    def outputs(online, target, v1, v2):
        p1, p2 = (online.predictor(online.projector(online.backbone(v).pooled)) for v in (v1, v2))
        return p1, p2, target(v1, inference=True), target(v2, inference=True)

    p1, p2, z1, z2 = outputs(trainable, target, views["view1"], views["view2"])
    expected = _np_regression(p1, z2) + _np_regression(p2, z1)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    assert abs(_np_regression(p1, z2) - _np_regression(p2, z1)) > 1e-4  # the two orders are both needed
    assert 0.0 <= float(loss) <= 8.0


def test_no_gradient_reaches_the_target(contract):
    trainable, state, views, _, _, _ = contract
    grads = checks.state_gradient(_method(), trainable, state, views)
    leaves = jax.tree.leaves(grads)
    assert leaves and all(float(jnp.max(jnp.abs(g))) == 0.0 for g in leaves)


@pytest.mark.parametrize("step", [0, 10, TOTAL // 2, TOTAL, TOTAL + 7])
def test_target_tau_follows_the_cosine_schedule_through_update_state(contract, step):
    trainable, state, _, _, aux, _ = contract
    method = _method(tau_base=0.97)
    # An online network away from the target, so every leaf of the EMA moves.
    online = eqx.tree_at(lambda m: m.projector, trainable,
                         jax.tree.map(lambda x: x + 0.5, trainable.projector))
    new = eqx.filter_jit(method.update_state)(online, state, aux, step=jnp.int32(step))
    k = min(step, TOTAL)
    tau = 1.0 - (1.0 - 0.97) * (math.cos(math.pi * k / TOTAL) + 1.0) / 2.0
    np.testing.assert_allclose(float(method.tau(step)), tau, rtol=1e-6, atol=1e-7)
    for t_new, t_old, o in zip(jax.tree.leaves(new["target"]), jax.tree.leaves(state["target"]),
                               jax.tree.leaves(online.projection_network()), strict=True):
        expected = tau * np.asarray(t_old, np.float64) + (1.0 - tau) * np.asarray(o, np.float64)
        np.testing.assert_allclose(np.asarray(t_new), expected, rtol=1e-5, atol=1e-6)


def test_bad_hyperparameters_raise():
    with pytest.raises(ValueError, match="base_tau=1.5"):
        _method(tau_base=1.5)
    with pytest.raises(ValueError, match="head_norm='batchnorm'"):
        _method(head_norm="batchnorm")


@pytest.mark.slow
def test_thirty_steps_on_fmnist_objects_lower_the_loss():
    method = _method(backbone=checks.TINY_BACKBONE, total_steps=30, proj_hidden_dim=64, proj_dim=32,
                     pred_hidden_dim=64)
    losses = checks.smoke_losses(method)
    checks.assert_learns(losses)

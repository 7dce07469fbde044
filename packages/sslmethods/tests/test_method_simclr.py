"""SimCLR: the method contract, the loss wiring against a float64 NT-Xent, the global batch and the learning smoke
test."""

import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec

sys.path.insert(0, str(Path(__file__).parent))
import _method_checks as checks  # noqa: E402
from sslmethods.methods.simclr import SimCLR  # noqa: E402


def _method(**overrides):
    kwargs = {"backbone": checks.CONTRACT_BACKBONE, "total_steps": 30, "proj_hidden_dim": 48, "proj_dim": 16}
    return SimCLR(**(kwargs | overrides))


def _np_nt_xent(z1, z2, temperature):
    """google-research/simclr add_contrastive_loss in float64, the two directions averaged."""
    z = np.concatenate([z1, z2]).astype(np.float64)
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n = z.shape[0]
    logits = z @ z.T / temperature
    np.fill_diagonal(logits, -np.inf)
    logp = logits - np.log(np.sum(np.exp(logits - logits.max(1, keepdims=True)), 1, keepdims=True)) \
        - logits.max(1, keepdims=True)
    b = n // 2
    positive = np.concatenate([np.arange(b, n), np.arange(b)])
    return -np.mean(logp[np.arange(n), positive])


@pytest.fixture(scope="module")
def contract():
    return checks.check_contract(_method())


def test_contract_and_loss_matches_float64_nt_xent(contract):
    method = _method()
    trainable, _, views, loss, aux, _ = contract
    assert set(views) == {"view1", "view2"} and views["view1"].shape == (4, 32, 32, 3)
    z1, z2 = trainable(views["view1"]), trainable(views["view2"])
    assert z1.shape == (4, 16)
    np.testing.assert_allclose(float(loss), _np_nt_xent(np.asarray(z1), np.asarray(z2), 0.1), rtol=1e-5)
    cos = np.sum(np.asarray(z1) * np.asarray(z2), 1) / np.linalg.norm(z1, axis=1) / np.linalg.norm(z2, axis=1)
    np.testing.assert_allclose(float(aux["metrics"]["positive_cosine"]), cos.mean(), rtol=1e-5)
    assert method.weight_decay_mask(trainable).head.layers[0].weight
    # The study's SimCLR encoder is MAE's ViT: sin-cos position embedding (no table to learn), no classifier.
    assert trainable.backbone.config.pos_embed == "sincos" and trainable.backbone.pos_embed is None
    assert trainable.backbone.head is None and method.encoder(trainable) is trainable.backbone


def test_negatives_come_from_the_global_batch(contract):
    # Views sharded over the 4 devices: inside one jit the loss still contrasts every pair of the global batch.
    method = _method()
    trainable, _, views, loss, _, _ = contract
    mesh = Mesh(np.asarray(jax.devices()[:4]), ("data",))
    sharded = jax.device_put(views, NamedSharding(mesh, PartitionSpec("data")))
    value, _ = eqx.filter_jit(method.loss)(trainable, {}, sharded, step=jnp.int32(0), key=jax.random.key(3))
    np.testing.assert_allclose(float(value), float(loss), rtol=1e-5)
    # A per-device loss (one example each) would have no negatives and be exactly 0.
    assert float(loss) > 0.5


def test_bad_hyperparameters_raise():
    with pytest.raises(ValueError, match="temperature=0"):
        _method(temperature=0.0)
    with pytest.raises(ValueError, match="head_norm='group'"):
        _method(head_norm="group")
    with pytest.raises(ValueError, match="total_steps=0"):
        _method(total_steps=0)


@pytest.mark.slow
def test_thirty_steps_on_fmnist_objects_lower_the_loss():
    losses = checks.smoke_losses(_method(backbone=checks.TINY_BACKBONE, proj_hidden_dim=64, proj_dim=32))
    checks.assert_learns(losses)

"""Methods over every vitcore backbone family: an NFNet pre-trained end to end, the ViT-only methods' refusal,
the same kNN upstream monitor for every method, and adaptive gradient clipping against a numpy reference."""

import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sslmethods
import vitcore

sys.path.insert(0, str(Path(__file__).parent))
from _engine_toys import SyntheticData  # noqa: E402
from runloop import LoopConfig  # noqa: E402
from sslmethods.pretrain import recipes  # noqa: E402
from sslmethods.pretrain.optim import OptimConfig  # noqa: E402
from sslmethods.pretrain.step import make_method_step  # noqa: E402
from sslmethods.pretrain.train_state import abstract_pretrain_state, init_pretrain_state, method_optimizer  # noqa: E402
from sslmethods.pretrain.trainer import KnnSplits, TrainConfig, knn_monitor, train_method  # noqa: E402

ANY_FAMILY = ("supervised", "clip", "simclr", "byol")
NAMES = tuple(f"class {i}" for i in range(10))


def _build(name, model, steps=4):
    fields = {"num_classes": 10} if name == "supervised" else {"class_names": NAMES} if name == "clip" else {}
    return recipes.build_method(name, model, preset="demo", total_steps=steps, method_overrides=fields)


@pytest.mark.parametrize("name", ANY_FAMILY)
def test_a_method_builds_an_nfnet_and_traces_a_whole_step(name):
    method, optim = _build(name, "nfnet-test")
    trainable, _ = eqx.filter_eval_shape(method.init, key=jax.random.key(0))
    encoder = method.encoder(trainable)
    assert isinstance(encoder, vitcore.NFNet) and encoder.config.num_classes in (0, 10)
    tx = method_optimizer(method, optim, 4)
    state, batch = abstract_pretrain_state(method, tx, method.batch_spec(4))
    new_state, metrics = eqx.filter_eval_shape(make_method_step(method, tx), state, batch)  # traced, not compiled
    assert metrics["loss"].shape == () and jax.tree.structure(new_state) == jax.tree.structure(state)
    assert method.analytic_macs(4) > 0


@pytest.mark.parametrize("name", ["mae", "dino"])
def test_token_methods_refuse_an_nfnet_naming_the_method_and_the_backbone(name):
    with pytest.raises(ValueError, match=rf"method '{name}' requires a ViT backbone \(.+\); model='nfnet-test' is "
                                         r"an NFNet: use a vit-\* preset"):
        recipes.build_method(name, "nfnet-test", preset="demo", total_steps=4)
    with pytest.raises(ValueError, match=rf"method '{name}' requires a ViT backbone .+; backbone is NFNetConfig"):
        sslmethods.METHODS[name](backbone=vitcore.get_config("nfnet-test"), total_steps=4)


def _splits():
    data = SyntheticData(24, image_shape=(32, 32, 3), num_classes=10, seed=3)
    bank, query = data.batch_at(0), data.batch_at(1)
    return KnnSplits(bank["image"], bank["label"], query["image"], query["label"], num_classes=10)


@pytest.mark.parametrize("name,model", [*((m, "vit-test") for m in sslmethods.METHODS), ("simclr", "nfnet-test")])
def test_every_method_gets_the_same_upstream_knn_monitor(name, model):
    method, optim = _build(name, model)
    state = init_pretrain_state(method, method_optimizer(method, optim, 4), key=jax.random.key(0))
    accuracy = knn_monitor(method, state, _splits(), k=5)
    assert 0.0 <= accuracy <= 1.0


@pytest.mark.slow
def test_an_nfnet_pretrains_end_to_end_and_its_run_records_upstream_accuracy(tmp_path):
    method, optim = _build("supervised", "nfnet-test", steps=2)
    optim = OptimConfig(lr=1e-3, clip_norm=None, agc=0.01)  # the NFNet recipe's clipping
    cfg = TrainConfig(str(tmp_path), LoopConfig(steps=2, batch_size=8, print_progress=False))
    summary, _ = train_method(method, optim, SyntheticData(8, image_shape=(32, 32, 3), num_classes=10), cfg,
                       knn=_splits())
    assert summary.status == "completed" and summary.flops_per_step > 0 and summary.knn[-1]["step"] == 2
    encoder = vitcore.load_pretrained(tmp_path)
    assert isinstance(encoder, vitcore.NFNet) and encoder.config.num_classes == 10


def _unitwise_norm(x):
    x = np.asarray(x, np.float64)
    if np.squeeze(x).ndim <= 1:
        return np.sqrt(np.sum(x**2))
    return np.sqrt(np.sum(x**2, axis=tuple(range(1, x.ndim)), keepdims=True))


def test_agc_clips_every_unit_but_the_final_layer():
    """With b1 = b2 = 0 and a large eps, the first Adam update is -lr * g / (|g| + eps): it shows the clipped
    gradient, compared with Brock et al.'s rule in float64 numpy (output axis first)."""
    method, _ = _build("supervised", "nfnet-test")
    cfg = OptimConfig("adam", lr=1.0, b1=0.0, b2=0.0, eps=1e3, clip_norm=None, agc=0.01)
    trainable, _ = method.init(key=jax.random.key(0))
    params = eqx.filter(trainable, eqx.is_inexact_array)
    leaves, treedef = jax.tree.flatten(params)
    rng = np.random.default_rng(0)
    grads = jax.tree.unflatten(treedef, [jnp.asarray(rng.normal(0, 10, x.shape), jnp.float32) for x in leaves])
    tx = method_optimizer(method, cfg, 4)
    updates, _ = jax.jit(lambda g, p: tx.update(g, tx.init(p), p))(grads, params)
    head = {id(trainable.head.weight), id(trainable.head.bias)}
    clipped = 0
    for param, grad, update in zip(leaves, jax.tree.leaves(grads), jax.tree.leaves(updates), strict=True):
        g = np.asarray(grad, np.float64)
        if id(param) not in head:
            limit = 0.01 * np.maximum(_unitwise_norm(param), 1e-3)
            norm = _unitwise_norm(g)
            scaled = g * limit / np.maximum(norm, 1e-6)
            clipped += int(np.any(norm >= limit))
            g = np.where(norm < limit, g, scaled)
        np.testing.assert_allclose(np.asarray(update), -g / (np.abs(g) + 1e3), rtol=2e-5, atol=1e-9)
    assert clipped > 10  # the rule was active, not vacuous

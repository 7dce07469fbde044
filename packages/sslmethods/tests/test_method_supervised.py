"""Supervised method: contract, multi-label targets through the method against float64 numpy, head init, learning."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _method_smoke import (  # noqa: E402
    contract_run,
    fmnist_objects,
    random_batch,
    smoke_run,
    tiny_backbone,
    zero_grad_leaves,
)
from sslmethods.methods.supervised import Supervised, batch_labels  # noqa: E402


def _method(**kw):
    return Supervised(backbone=tiny_backbone(), total_steps=10, num_classes=10, **kw)


@pytest.fixture(scope="module")
def run():
    # drop_path=0 so the float64 reference below sees the same logits as the loss.
    return contract_run(_method(drop_path=0.0), random_batch(8), probe=lambda m, v, k: m(v["image"]).logits)


def _reference_loss(logits, labels, num_classes, smoothing):
    """Float64 numpy: mean of the one-hots of the valid labels, label smoothing, softmax cross-entropy."""
    logits = np.asarray(logits, np.float64)
    target = np.zeros_like(logits)
    for i, row in enumerate(np.asarray(labels)):
        valid = [int(v) for v in row if v >= 0]
        for v in valid:
            target[i, v] += 1.0 / len(valid)
    target = (1 - smoothing) * target + smoothing / num_classes
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-(target * logp).sum(axis=1).mean())


def test_contract_shapes_and_gradients(run):
    views, trainable = run["views"], run["trainable"]
    assert views["image"].shape == (8, 32, 32, 3) and views["image"].dtype == jnp.float32
    assert views["labels"].shape == (8, 8) and views["labels"].dtype == jnp.int32
    assert float(jnp.min(views["image"])) >= 0.0 and float(jnp.max(views["image"])) <= 1.0
    assert run["state"] == {} and run["new_state"] == {}
    assert zero_grad_leaves(run["grads"]) == []  # every parameter, head included, is trained
    assert _method().encoder(trainable) is trainable


def test_multilabel_loss_matches_float64_reference(run):
    views = run["views"]
    logits = run["probe"]  # inference logits of the trained-on views
    expected = _reference_loss(logits, views["labels"], 10, 0.1)
    np.testing.assert_allclose(float(_method().classification_loss(logits, views["labels"])[0]), expected,
                               rtol=1e-5)
    np.testing.assert_allclose(float(run["loss"]), expected, rtol=1e-5, atol=1e-6)
    # The padding really is ignored: the views keep -1 entries and the loss still matches the reference.
    assert int(jnp.sum(views["labels"] < 0)) > 0


def test_single_label_is_the_one_label_path(run):
    batch = random_batch(8)
    single = {k: jnp.asarray(v) for k, v in batch.items() if k != "labels"}
    method = _method(drop_path=0.0)
    views = jax.eval_shape(lambda b: method.views(b, step=jnp.int32(0), key=jax.random.key(1)), single)
    assert views["labels"].shape == (8, 1) and views["image"].shape == (8, 32, 32, 3)
    labels = batch_labels(single)
    np.testing.assert_array_equal(np.asarray(labels[:, 0]), batch["label"])
    logits = run["probe"]
    loss, aux = method.classification_loss(logits, labels)
    np.testing.assert_allclose(float(loss), _reference_loss(logits, labels, 10, 0.1), rtol=1e-5)
    top1 = np.argmax(np.asarray(logits), axis=1)
    np.testing.assert_allclose(float(aux["metrics"]["accuracy"]), np.mean(top1 == batch["label"]))


def test_labels_preferred_and_capped():
    batch = {k: jnp.asarray(v) for k, v in random_batch(4).items()}
    np.testing.assert_array_equal(np.asarray(batch_labels(batch)), np.asarray(batch["labels"]))
    method = _method(max_labels=2)
    views = jax.eval_shape(lambda b: method.views(b, step=jnp.int32(0), key=jax.random.key(0)), batch)
    assert views["labels"].shape == (4, 2)
    with pytest.raises(ValueError, match="'label'"):
        batch_labels({"image": batch["image"]})


def test_head_init_drop_path_and_weight_decay_mask():
    method = _method()
    assert method.config.drop_path == 0.1 and method.config.num_classes == 10 and method.image_size == 32
    vit, _ = method.init(key=jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(vit.head.bias), np.full(10, -10.0, np.float32))
    # timm's trunc_normal(std=0.02), truncated at 2 std: the sample std is 0.02 * 0.88 = 0.0176.
    std = float(jnp.std(vit.head.weight))
    assert 0.014 < std < 0.021, std
    mask = method.weight_decay_mask(vit)
    assert mask.head.weight is True and mask.head.bias is False
    assert mask.norm.scale is False and mask.cls_token is False and mask.pos_embed is False


def test_head_bias_of_minus_ten_is_inert_under_softmax():
    """Softmax is shift-invariant, so the study's -10 head bias (kept for fidelity) changes neither the loss nor
    any gradient (the bias's own included): training is the same as with a zero bias, offset by -10 for good."""
    batch = random_batch(8)
    views = {"image": jnp.asarray(batch["image"]), "labels": jnp.asarray(batch["labels"])[:, :8]}
    results = []
    for bias in (-10.0, 0.0):
        method = _method(head_bias_init=bias)
        model, state = method.init(key=jax.random.key(0))
        assert float(model.head.bias[0]) == bias
        fn = jax.value_and_grad(lambda m, method=method, state=state: method.loss(
            m, state, views, step=jnp.int32(0), key=jax.random.key(1))[0])
        results.append(fn(model))
    (loss_a, grads_a), (loss_b, grads_b) = results
    np.testing.assert_allclose(float(loss_a), float(loss_b), rtol=1e-6)
    for a, b in zip(jax.tree.leaves(grads_a), jax.tree.leaves(grads_b), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-7)


def test_invalid_settings_raise():
    with pytest.raises(ValueError, match="num_classes"):
        Supervised(backbone=tiny_backbone(), total_steps=10, num_classes=0)
    with pytest.raises(ValueError, match="total_steps"):
        Supervised(backbone=tiny_backbone(), total_steps=0)
    with pytest.raises(TypeError, match="backbone"):
        Supervised(backbone="vit-test", total_steps=10)
    with pytest.raises(ValueError, match="drop_path"):
        Supervised(backbone=tiny_backbone(), total_steps=10, drop_path=1.5)


@pytest.mark.slow
def test_thirty_steps_lower_the_loss(tmp_path_factory):
    directory = fmnist_objects(tmp_path_factory)
    method = Supervised(backbone=tiny_backbone(), total_steps=30, num_classes=10, drop_path=0.0)
    before, after, losses = smoke_run(method, directory)
    assert after < before - 0.02, (before, after, losses)

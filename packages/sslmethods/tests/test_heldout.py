"""The held-out upstream evaluation: the fixed set, the fixed key, the method hook and what the run records."""

import json
import sys
from pathlib import Path

import equinox as eqx
import flopdata
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import vitcore

sys.path.insert(0, str(Path(__file__).parent))
from _engine_toys import SyntheticData, ToyClassifier  # noqa: E402
from _method_smoke import fmnist_objects  # noqa: E402
from runloop import LoopConfig  # noqa: E402
from sslmethods.heldout import HELDOUT_KEY, HeldOutSet, heldout_metrics, heldout_set  # noqa: E402
from sslmethods.optim import OptimConfig  # noqa: E402
from sslmethods.supervised import Supervised  # noqa: E402
from sslmethods.trainer import TrainConfig, train  # noqa: E402

SHAPE = (8, 8, 1)


def _gelu(x):
    # jax.nn.gelu's default (tanh) form
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def _toy_loss_reference(encoder, batch, noise, key):
    """Float64 numpy: the toy's cross-entropy on the batch plus its key-driven noise."""
    w1, b1 = (np.asarray(a, np.float64) for a in (encoder.hidden.weight, encoder.hidden.bias))
    w2, b2 = (np.asarray(a, np.float64) for a in (encoder.head.weight, encoder.head.bias))
    k_aug, _ = jax.random.split(key)
    images = batch["image"] + noise * np.asarray(jax.random.normal(k_aug, batch["image"].shape, jnp.float32))
    x = images.reshape(len(images), -1).astype(np.float64)
    logits = _gelu(x @ w1.T + b1) @ w2.T + b2
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    return -logp[np.arange(len(x)), batch["label"]].mean()


def test_the_run_records_the_heldout_loss_of_its_final_parameters(tmp_path):
    method = ToyClassifier(image_shape=SHAPE, hidden=16, num_classes=4, noise=0.3)
    data = SyntheticData(32, image_shape=SHAPE, num_classes=4, seed=3)
    held = HeldOutSet(tuple(SyntheticData(32, image_shape=SHAPE, num_classes=4, seed=99).batch_at(i)
                            for i in range(3)), "test")
    cfg = TrainConfig(out_dir=str(tmp_path / "run"), loop=LoopConfig(steps=6, batch_size=32, print_progress=False,
                                                                     measure_flops=False))
    summary, state = train(method, OptimConfig(lr=1e-2), data, cfg, heldout=held)
    written = json.loads((tmp_path / "run" / "summary.json").read_text())["final_metrics"]
    root = jax.random.key(HELDOUT_KEY)
    expected = np.mean([_toy_loss_reference(state.trainable, b, 0.3, jax.random.fold_in(root, i))
                        for i, b in enumerate(held.batches)])
    assert written["heldout_loss"] == pytest.approx(expected, rel=1e-5)
    assert written["heldout_examples"] == 96
    # the last batch's training loss is a different number, kept under its old name
    assert written["loss"] != pytest.approx(written["heldout_loss"], rel=1e-3)
    # the default hook reports no accuracy, although this method logs one while training
    assert "heldout_accuracy" not in written
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "heldout_loss" in r] == [6]
    # the same parameters give the same number again (one fixed key, no state kept between calls)
    again = heldout_metrics(method, state.trainable, state.method_state, held, step=6)
    assert again["heldout_loss"] == pytest.approx(written["heldout_loss"], rel=1e-6)

    without = TrainConfig(out_dir=str(tmp_path / "plain"), loop=cfg.loop)
    summary, _ = train(method, OptimConfig(lr=1e-2), SyntheticData(32, image_shape=SHAPE, num_classes=4, seed=3),
                       without)
    assert "heldout_loss" not in summary.final_metrics


def test_supervised_heldout_is_the_unaugmented_inference_loss_and_top1():
    method = Supervised(backbone=vitcore.get_config("vit-test"), total_steps=10, num_classes=5, max_labels=3,
                        label_smoothing=0.1)
    model, state = method.init(key=jax.random.key(1))
    rng = np.random.default_rng(0)
    batch = {"image": rng.uniform(0, 1, (8, 32, 32, 3)).astype(np.float32),
             "labels": np.array([[0, 2, -1]] * 4 + [[4, -1, -1]] * 4, np.int32)}
    held = HeldOutSet((batch,), "test")
    got = heldout_metrics(method, model, state, held, step=3)
    logits = np.asarray(model(jnp.asarray(batch["image"]), inference=True).logits, np.float64)
    targets = np.zeros((8, 5))
    for row, labels in enumerate(batch["labels"]):
        valid = labels[labels >= 0]
        targets[row, valid] = 1.0 / len(valid)
    targets = 0.9 * targets + 0.1 / 5
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    top1 = logits.argmax(1)
    hits = [top1[r] in batch["labels"][r][batch["labels"][r] >= 0] for r in range(8)]
    assert got["heldout_loss"] == pytest.approx(-(targets * logp).sum(1).mean(), rel=1e-5)
    assert got["heldout_accuracy"] == pytest.approx(np.mean(hits))
    # inference mode and no augmentation: the key plays no part
    trained_like = eqx.tree_at(lambda m: m.head.bias, model, model.head.bias + jnp.arange(5.0))
    other = heldout_metrics(method, trained_like, state, held, step=3)
    assert other["heldout_loss"] != pytest.approx(got["heldout_loss"])


def test_heldout_set_is_the_first_test_examples_in_file_order(tmp_path_factory):
    directory = fmnist_objects(tmp_path_factory)
    source = flopdata.RecordSource(str(directory), "test")
    held = heldout_set(directory, image_size=32, batch_size=4, batches=2)
    assert held.split == "test" and held.examples == 8 and len(held.batches) == 2
    images = np.concatenate([b["image"] for b in held.batches])
    for i in range(8):
        fields = flopdata.parse_example(source[i]["record"], where="test")
        expected = flopdata.resize_image(flopdata.decode_rgb(fields["image"][0], where="test"), 32, 32)
        np.testing.assert_allclose(images[i], expected.astype(np.float32) / 255.0)
    assert heldout_set(directory, image_size=32, batch_size=len(source) + 1) is None  # less than one batch
    assert heldout_set(directory, image_size=32, batch_size=4, split="validation") is None  # no such split
    with pytest.raises(ValueError, match="batches=0"):
        heldout_set(directory, image_size=32, batch_size=4, batches=0)

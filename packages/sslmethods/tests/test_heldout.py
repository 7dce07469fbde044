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

sys.path.insert(0, str(Path(__file__).parent))
from _engine_toys import SyntheticData, ToyClassifier  # noqa: E402
from _method_smoke import fmnist_objects  # noqa: E402
from runloop import LoopConfig  # noqa: E402
from sslmethods.pretrain.heldout import HELDOUT_KEY, HeldOutSet, heldout_set  # noqa: E402
from sslmethods.pretrain.optim import OptimConfig  # noqa: E402
from sslmethods.pretrain.trainer import TrainConfig, train_method  # noqa: E402

SHAPE = (8, 8, 1)


def _gelu(x):
    # jax.nn.gelu's default (tanh) form
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def _toy_reference(encoder, batch, noise):
    """Float64 numpy: the toy's cross-entropy and top-1 on the batch plus the noise of the held-out key at step 0."""
    w1, b1 = (np.asarray(a, np.float64) for a in (encoder.hidden.weight, encoder.hidden.bias))
    w2, b2 = (np.asarray(a, np.float64) for a in (encoder.head.weight, encoder.head.bias))
    k_aug, _ = jax.random.split(jax.random.fold_in(jax.random.key(HELDOUT_KEY), 0))
    images = batch["image"] + noise * np.asarray(jax.random.normal(k_aug, batch["image"].shape, jnp.float32))
    x = images.reshape(len(images), -1).astype(np.float64)
    logits = _gelu(x @ w1.T + b1) @ w2.T + b2
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    return -logp[np.arange(len(x)), batch["label"]].mean(), np.mean(logits.argmax(1) == batch["label"])


def test_the_run_records_the_heldout_loss_of_its_final_parameters(tmp_path):
    method = ToyClassifier(image_shape=SHAPE, hidden=16, num_classes=4, noise=0.3)
    held = HeldOutSet(tuple(SyntheticData(32, image_shape=SHAPE, num_classes=4, seed=99).batch_at(i)
                            for i in range(3)), "test")
    loop = LoopConfig(steps=6, batch_size=32, eval_every=3, print_progress=False, measure_flops=False)
    summary, state = train_method(method, OptimConfig(lr=1e-2),
                                  SyntheticData(32, image_shape=SHAPE, num_classes=4, seed=3),
                                  TrainConfig(out_dir=str(tmp_path / "run"), loop=loop), heldout=held)
    written = json.loads((tmp_path / "run" / "summary.json").read_text())["final_metrics"]
    losses, hits = zip(*(_toy_reference(state.model, b, 0.3) for b in held.batches), strict=True)
    assert written["heldout_loss"] == pytest.approx(np.mean(losses), rel=1e-5)
    assert written["heldout_accuracy"] == pytest.approx(np.mean(hits), abs=1e-6)  # the method's own metric
    assert written["heldout_examples"] == 96
    assert not {"heldout_grad_norm", "heldout_lr", "heldout_finite", "heldout_param_norm"} & set(written)
    # the last batch's training loss is a different number, kept under its old name
    assert written["loss"] != pytest.approx(written["heldout_loss"], rel=1e-3)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "heldout_loss" in r] == [3, 6]

    # scoring the held-out set neither changes the training nor its final state: the same run without it
    _, plain = train_method(method, OptimConfig(lr=1e-2), SyntheticData(32, image_shape=SHAPE, num_classes=4, seed=3),
                     TrainConfig(out_dir=str(tmp_path / "plain"), loop=loop))
    for a, b in zip(jax.tree.leaves(eqx.filter(state, eqx.is_inexact_array)),
                    jax.tree.leaves(eqx.filter(plain, eqx.is_inexact_array)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    plain_summary = json.loads((tmp_path / "plain" / "summary.json").read_text())
    assert "heldout_loss" not in plain_summary["final_metrics"]


def test_heldout_set_is_the_first_test_examples_in_file_order(tmp_path_factory):
    directory = fmnist_objects(tmp_path_factory)
    source = flopdata.RecordSource(str(directory), "test")
    held = heldout_set(directory, image_size=32, batch_size=4, batches=2)
    assert held.split == "test" and len(held.batches) == 2
    images = np.concatenate([b["image"] for b in held.batches])
    for i in range(8):
        fields = flopdata.parse_example(source[i]["record"], where="test")
        expected = flopdata.resize_image(flopdata.decode_rgb(fields["image"][0], where="test"), 32, 32)
        np.testing.assert_allclose(images[i], expected.astype(np.float32) / 255.0)
    assert heldout_set(directory, image_size=32, batch_size=len(source) + 1) is None  # less than one batch
    assert heldout_set(directory, image_size=32, batch_size=4, split="validation") is None  # no such split
    with pytest.raises(ValueError, match="batches=0"):
        heldout_set(directory, image_size=32, batch_size=4, batches=0)

"""The user-method example (`examples/simsiam.py`): built by import path through `recipes.build_method`, trained a
few steps with the engine's step, finite losses that change, and an encoder that exports and loads back."""

import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import runloop
import vitcore
from sslmethods.pretrain import recipes
from sslmethods.pretrain.optim import make_optimizer
from sslmethods.pretrain.step import make_train_step
from sslmethods.pretrain.train_state import decay_mask, init_pretrain_state

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def examples_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    yield
    sys.modules.pop("simsiam", None)


def test_simsiam_example_trains_by_import_path_and_exports_its_encoder(examples_on_path, tmp_path):
    method, optim = recipes.build_method(
        "simsiam:SimSiam", "vit-test", preset="demo", total_steps=3,
        model_overrides={"width": 32, "depth": 1, "num_heads": 2}, method_overrides={"proj_dim": 16,
                                                                                     "pred_hidden_dim": 8})
    assert type(method).__module__ == "simsiam" and method.proj_dim == 16
    tx = make_optimizer(optim, method.total_steps, wd_mask=lambda p: decay_mask(method, p))
    state = init_pretrain_state(method, tx, key=jax.random.key(0))
    step = make_train_step(method, tx)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(3):
        host = {"image": rng.uniform(0, 1, (8, 32, 32, 3)).astype(np.float32), "label": np.arange(8),
                "caption": np.asarray(["x"] * 8)}
        state, metrics = step(state, {k: jax.numpy.asarray(v) for k, v in method.prepare_batch(host).items()})
        losses.append(float(metrics["loss"]))
    assert np.all(np.isfinite(losses)) and int(state.step) == 3, losses
    assert all(-1.0 <= loss <= 1.0 for loss in losses) and len(set(losses)) == 3  # negative cosine, learning
    encoder = method.encoder(state.model)
    assert isinstance(encoder, vitcore.ViT) and encoder.config.pos_embed == "sincos"
    runloop.write_files_atomic(tmp_path, vitcore.encoder_files(encoder))
    loaded = vitcore.load_pretrained(tmp_path)
    images = jax.numpy.asarray(rng.uniform(0, 1, (2, 32, 32, 3)), jax.numpy.float32)
    np.testing.assert_allclose(np.asarray(loaded(images).pooled), np.asarray(encoder(images).pooled), rtol=1e-6)

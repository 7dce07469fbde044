"""Shared checks of the method tests: tiny ViT configs, the AbstractMethod contract, a tiny `fmnist_objects`
set and the learning smoke run.

``fmnist_objects_dir()`` builds the set once per test session with ``flopdata.build`` (skipping the
calling test when the Fashion-MNIST idx files are absent); ``smoke_losses(method)`` trains ``method`` with the
engine's step and optimizer (the ``demo`` preset's optimizer) on it and returns the per-step losses.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import equinox as eqx
import flopdata
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import vitcore
from sslmethods.pretrain.data import PretrainData, pretrain_loader
from sslmethods.pretrain.optim import make_optimizer
from sslmethods.pretrain.presets import get_preset
from sslmethods.pretrain.step import make_train_step
from sslmethods.pretrain.train_state import decay_mask, init_pretrain_state

FMNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # flopdata.builders.fmnist_idx DEBIAN_DIR
IMAGE_SIZE = 32
NUM_EXAMPLES = 192

TINY_BACKBONE = vitcore.get_config("vit-test", width=32, depth=2, num_heads=2)
"""Image 32, patch 8, width 32, depth 2: what the learning smoke tests train."""

CONTRACT_BACKBONE = vitcore.get_config("vit-test", width=32, depth=1, num_heads=2)
"""One block: the contract and correctness tests only need the wiring, and compile faster."""


@functools.cache
def _build() -> Path:
    data_dir = tempfile.mkdtemp(prefix="flopwise_fmnist_objects_")
    return flopdata.build("fmnist_objects", data_dir=data_dir, num_examples=NUM_EXAMPLES, image_size=IMAGE_SIZE)


def fmnist_objects_dir() -> Path:
    """A small fmnist_objects build (192 train images, 32x32), made once per session; skips without the data."""
    if not (FMNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"Fashion-MNIST idx files not in {FMNIST_DIR} (apt-get install dataset-fashion-mnist)")
    return _build()


def smoke_losses(method, *, steps: int = 30, batch_size: int = 32, seed: int = 0) -> np.ndarray:
    """Trains ``method`` for ``steps`` steps on fmnist_objects with the engine; the loss of every step."""
    _, optim_cfg = get_preset(method.name, "demo")
    trainable, _ = method.init(key=jax.random.key(seed))
    tx = make_optimizer(optim_cfg, steps, decay_mask(method, trainable))
    state = init_pretrain_state(method, tx, key=jax.random.key(seed))
    step_fn = make_train_step(method, tx)
    loader = pretrain_loader(PretrainData(str(fmnist_objects_dir()), batch_size=batch_size,
                                          image_size=IMAGE_SIZE, seed=seed, shard_index=0, shard_count=1))
    losses = []
    for _, batch in zip(range(steps), iter(loader), strict=False):
        batch = {k: jax.numpy.asarray(v) for k, v in method.prepare_batch(batch).items()}
        state, metrics = step_fn(state, batch)
        losses.append(float(metrics["loss"]))
    assert len(losses) == steps
    return np.asarray(losses)


def assert_learns(losses: np.ndarray, *, window: int = 5, margin: float = 0.0) -> None:
    """The mean loss of the last ``window`` steps is below that of the first ``window`` by more than ``margin``."""
    first, last = float(np.mean(losses[:window])), float(np.mean(losses[-window:]))
    assert np.all(np.isfinite(losses)), losses
    assert last < first - margin, f"loss did not go down: first {first:.4f}, last {last:.4f}; {losses}"


def random_batch(batch_size: int = 4, seed: int = 1) -> dict[str, jax.Array]:
    """Raw images in [0, 1] at the tiny backbone's size."""
    return {"image": jax.random.uniform(jax.random.key(seed), (batch_size, IMAGE_SIZE, IMAGE_SIZE, 3))}


def check_contract(method, *, batch_size: int = 4):
    """The ``AbstractMethod`` contract: jitted init/views/loss/update_state give finite float32 results of fixed
    shapes, every trainable leaf gets a non-zero gradient, the decay mask fits, the encoder is the ViT.

    Returns ``(trainable, state, views, loss, aux, grads)`` for the method-specific checks."""
    trainable, state = eqx.filter_jit(method.init)(key=jax.random.key(0))
    views_fn = eqx.filter_jit(method.views)
    views = views_fn(random_batch(batch_size), step=jnp.int32(0), key=jax.random.key(2))
    again = views_fn(random_batch(batch_size), step=jnp.int32(0), key=jax.random.key(2))
    for name, view in views.items():
        assert view.dtype == jnp.float32 and view.shape[-1] == 3, (name, view.shape)
        np.testing.assert_array_equal(np.asarray(view), np.asarray(again[name]))  # same key, same views

    params, static = eqx.partition(trainable, eqx.is_inexact_array)

    @eqx.filter_jit
    def loss_and_grad(p, s, v):
        return jax.value_and_grad(
            lambda q: method.loss(eqx.combine(q, static), s, v, step=jnp.int32(0), key=jax.random.key(3)),
            has_aux=True)(p)

    (loss, aux), grads = loss_and_grad(params, state, views)
    assert loss.shape == () and loss.dtype == jnp.float32 and np.isfinite(float(loss))
    for name, value in aux["metrics"].items():
        assert value.shape == () and np.isfinite(float(value)), name
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        assert np.all(np.isfinite(np.asarray(g))), path
        assert float(jnp.max(jnp.abs(g))) > 0.0, f"no gradient reaches {jax.tree_util.keystr(path)}"

    new_state = eqx.filter_jit(method.update_state)(trainable, state, aux, step=jnp.int32(0))
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    for old, new in zip(jax.tree.leaves(state), jax.tree.leaves(new_state), strict=True):
        assert old.shape == new.shape and old.dtype == new.dtype and np.all(np.isfinite(np.asarray(new)))

    mask = decay_mask(method, trainable)  # raises when the structure does not fit
    assert any(jax.tree.leaves(mask)) and not all(jax.tree.leaves(mask))
    assert isinstance(method.encoder(trainable), vitcore.ViT)
    assert method.image_size == IMAGE_SIZE
    return trainable, state, views, loss, aux, grads


def state_gradient(method, trainable, state, views):
    """Gradient of the loss with respect to every floating leaf of the method state (teachers, centre)."""
    s_params, s_static = eqx.partition(state, eqx.is_inexact_array)

    @eqx.filter_jit
    def grad_fn(sp):
        return jax.grad(lambda q: method.loss(trainable, eqx.combine(q, s_static), views, step=jnp.int32(0),
                                              key=jax.random.key(3))[0])(sp)

    return grad_fn(s_params)

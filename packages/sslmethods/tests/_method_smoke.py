"""Shared pieces of the method tests: the tiny backbone and the 30-step learning smoke test on `fmnist_objects`.

The dataset is written by flopdata's builder (`flopdata.build`, what `tools/build_dataset.py` runs) into
pytest's session temp folder, once per session (`flopdata.build` reuses a build made with the same options), and
read back through `sslmethods.pretrain.data`, the real pipeline. Without the Fashion-MNIST idx files the smoke
tests skip.
"""

from __future__ import annotations

from pathlib import Path

import equinox as eqx
import flopdata
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import vitcore
from flopdata.builders import fmnist_idx
from runloop import TrainState
from sslmethods.methods.method import AbstractMethod
from sslmethods.pretrain.data import PretrainData, pretrain_loader
from sslmethods.pretrain.optim import OptimConfig, make_optimizer
from sslmethods.pretrain.step import make_train_step
from sslmethods.pretrain.train_state import decay_mask, init_pretrain_state

SMOKE_STEPS = 30
SMOKE_BATCH = 32
IMAGE_SIZE = 32


def tiny_backbone(**overrides) -> vitcore.ViTConfig:
    """Image 32, patch 8 (16 patches), width 32, depth 2, 2 heads."""
    return vitcore.get_config("vit-test", **overrides)


def fmnist_objects(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 128-example, 32-pixel `fmnist_objects` build (skips the test when Fashion-MNIST is absent)."""
    source = fmnist_idx.default_source()
    if (
        not (source / "train-images-idx3-ubyte.gz").exists()
        and not (source / "train-images-idx3-ubyte").exists()
    ):
        pytest.skip(f"Fashion-MNIST idx files not in {source} (apt-get install dataset-fashion-mnist)")
    root = tmp_path_factory.getbasetemp() / "fmnist_objects_smoke"
    return flopdata.build("fmnist_objects", data_dir=root, num_examples=128, seed=0, image_size=IMAGE_SIZE)


def _copy(state: TrainState) -> TrainState:
    # The jitted step donates its input state: evaluate on a copy so the original stays usable.
    return jax.tree.map(lambda x: jnp.copy(x) if eqx.is_array(x) else x, state)


def smoke_run(
    method: AbstractMethod, directory: Path, *, lr: float = 3e-3, seed: int = 0, held_split: str = "train"
) -> tuple[float, float, np.ndarray]:
    """Train `method` for 30 steps on `fmnist_objects` with the engine's step and AdamW.

    Returns (loss before, loss after, the 30 training losses). Before/after are the step's own loss on one fixed
    held batch with the step counter set to 0 (same augmentations, masks and dropout keys both times), so they
    differ only through the trained parameters.
    """
    loader = pretrain_loader(
        PretrainData(str(directory), batch_size=SMOKE_BATCH, image_size=IMAGE_SIZE, seed=seed)
    )
    held = next(
        iter(
            pretrain_loader(
                PretrainData(
                    str(directory),
                    batch_size=SMOKE_BATCH,
                    image_size=IMAGE_SIZE,
                    split=held_split,
                    shuffle=False,
                )
            )
        )
    )
    cfg = OptimConfig("adamw", lr=lr, b2=0.95, weight_decay=1e-4, clip_norm=1.0, warmup_steps=3)
    tx = make_optimizer(cfg, SMOKE_STEPS, wd_mask=lambda p: decay_mask(method, p))
    step = make_train_step(method, tx)

    def put(batch: dict) -> dict:
        return {k: jnp.asarray(v) for k, v in method.prepare_batch(batch).items()}

    def held_loss(state: TrainState) -> float:
        at_zero = eqx.tree_at(lambda s: s.step, _copy(state), jnp.zeros((), jnp.int32))
        return float(step(at_zero, put(held))[1]["loss"])

    state = init_pretrain_state(method, tx, key=jax.random.key(seed))
    before = held_loss(state)
    data, losses = iter(loader), []
    for _ in range(SMOKE_STEPS):
        state, metrics = step(state, put(next(data)))
        losses.append(metrics["loss"])
    after = held_loss(state)
    losses = np.asarray(jax.device_get(losses), np.float64)
    assert np.all(np.isfinite(losses)), losses
    return before, after, losses


def contract_run(method: AbstractMethod, batch: dict, *, seed: int = 0, probe=None) -> dict:
    """One jitted `views -> value_and_grad(loss) -> update_state` pass, the engine's composition, on a host batch.

    Returns trainable, state, views, loss, aux, grads (over the inexact leaves) and new_state, checking on the way
    that the loss is a finite float32 scalar and `aux["metrics"]` holds finite scalars. `probe(trainable, views,
    key)` (optional, called with the loss key) runs inside the same compiled program, its result under "probe"
    (one compilation instead of a second one or a slow eager pass).
    """
    k_init, k_aug, k_loss = jax.random.split(jax.random.key(seed), 3)
    trainable, state = method.init(key=k_init)
    host = {k: jnp.asarray(v) for k, v in method.prepare_batch(batch).items()}
    step = jnp.zeros((), jnp.int32)

    @eqx.filter_jit
    def run(trainable, state, host):
        views = method.views(host, step=step, key=k_aug)
        params, static = eqx.partition(trainable, eqx.is_inexact_array)

        def loss_fn(p):
            return method.loss(eqx.combine(p, static), state, views, step=step, key=k_loss)

        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        new_state = method.update_state(trainable, state, aux, step=step)
        probed = probe(trainable, views, k_loss) if probe is not None else None
        return views, loss, aux, grads, new_state, probed

    views, loss, aux, grads, new_state, probed = run(trainable, state, host)
    assert loss.shape == () and loss.dtype == jnp.float32 and bool(jnp.isfinite(loss)), loss
    for name, value in aux["metrics"].items():
        assert jnp.shape(value) == () and bool(jnp.isfinite(value)), (name, value)
    return {
        "trainable": trainable,
        "state": state,
        "views": views,
        "loss": loss,
        "aux": aux,
        "grads": grads,
        "new_state": new_state,
        "probe": probed,
        "host": host,
        "k_aug": k_aug,
        "k_loss": k_loss,
    }


def zero_grad_leaves(grads) -> list[str]:
    """Paths of inexact gradient leaves that are exactly zero everywhere."""
    leaves = jax.tree_util.tree_leaves_with_path(grads)
    return [jax.tree_util.keystr(path) for path, g in leaves if not bool(jnp.any(g != 0))]


def random_batch(size: int = 8, *, seed: int = 0, num_classes: int = 10) -> dict[str, np.ndarray]:
    """A host batch like `sslmethods.pretrain.data` yields: images in [0, 1], `label` [b] and `labels` [b, 8]
    (-1 padded)."""
    rng = np.random.default_rng(seed)
    labels = np.full((size, 8), -1, np.int32)
    for i in range(size):
        count = 1 + i % 3
        labels[i, :count] = rng.choice(num_classes, count, replace=False)
    return {
        "image": rng.uniform(0, 1, (size, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32),
        "label": labels[:, 0].copy(),
        "labels": labels,
    }

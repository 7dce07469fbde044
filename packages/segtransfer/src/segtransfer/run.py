"""One fine-tuning run (one LR, WD, seed): build, train with checkpoints, resume exactly, evaluate.

``finetune_run(config, encoder=..., out_dir=...)`` writes into ``out_dir``::

    checkpoints/step_XXXXXXXX/   model + optimizer state + data iterator state (`segtransfer.checkpoints`)
    run.json                     lr, wd, seed, steps, mIoU, aAcc, per-class IoU, losses summary (written last)

Randomness: ``key = jr.key(seed)`` split into encoder init (scratch only), head init and training; step ``s`` uses
``fold_in(k_train, s)`` for dropout, and the data order comes from grain's sampler seeded with ``seed``. A resumed
run restores model, optimizer state (which holds the schedule's step count) and the data iterator's state, so it
continues exactly where the interrupted one stopped. SIGTERM/SIGINT (or ``stop(step)`` returning True) save a
checkpoint and return ``{"status": "preempted"}``.

Data parallelism: with several devices and a batch divisible by their number, batches are split over a 1-axis
mesh and the state is replicated (`segtransfer.fit`'s scheme); otherwise one device runs.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax

from .checkpoints import restore_checkpoint, save_checkpoint
from .data import SegmentationData, segmentation_loader
from .encoders import EncoderInfo, load_encoder
from .finetune import evaluate, train_step
from .json_files import write_json_atomic
from .optim import finetune_optimizer, warmup_poly_schedule
from .protocol import FinetuneConfig
from .segmenter import Segmenter, create_segmenter, segmenter_weight_decay_mask
from .transfer_data import whole_image_batches

__all__ = ["build_model", "build_optimizer", "finetune_run", "run_name"]

RUN_FILE = "run.json"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_name(lr: float, wd: float, seed: int) -> str:
    """The sub-directory name of one run, e.g. ``lr0.0001-wd0.05-seed0``."""
    return f"lr{lr:g}-wd{wd:g}-seed{seed}"


def build_model(config: FinetuneConfig, encoder: str, *, model: str | None = None) -> tuple[Segmenter, EncoderInfo]:
    """The `Segmenter` a run starts from (encoder per `load_encoder`, head initialised from the seed)."""
    k_encoder, k_head, _ = jr.split(jr.key(config.seed), 3)
    vit, info = load_encoder(encoder, model=model, key=k_encoder, image_size=config.image_size)
    segmenter = create_segmenter(vit, config.num_classes, key=k_head, image_size=config.image_size,
                                 head_channels=config.head_channels, norm_groups=config.norm_groups)
    return segmenter, info


def build_optimizer(model: Segmenter, config: FinetuneConfig) -> optax.GradientTransformation:
    """Adam(0.9, 0.999, 1e-8) + constant decoupled weight decay + warmup/poly schedule + clip 1 (the study)."""
    schedule = warmup_poly_schedule(config.lr, config.steps, config.warmup_steps)
    return finetune_optimizer(schedule, config.wd, decay_mask=segmenter_weight_decay_mask(model))


class _StopOnSignal:
    """Turns SIGTERM/SIGINT into a flag while a run is in progress (main thread only)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGTERM, signal.SIGINT):
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        del signum, frame
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


def _mesh(batch_size: int) -> jax.sharding.Mesh | None:
    n = jax.device_count()
    if n == 1 or batch_size % n:
        return None
    return jax.make_mesh((n,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def _put(x: np.ndarray, mesh: jax.sharding.Mesh | None) -> jax.Array:
    if mesh is None:
        return jnp.asarray(x)
    return jax.device_put(x, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data")))


def _evaluate(model: Segmenter, config: FinetuneConfig) -> dict[str, Any]:
    if config.eval_mode == "slide":
        batches = whole_image_batches(config.dataset_dir, config.eval_split, config.num_classes,
                                      short_side=config.image_size)
        return evaluate(model, batches, mode="slide")
    loader = segmentation_loader(SegmentationData(
        config.dataset_dir, batch_size=config.eval_batch_size, num_classes=config.num_classes,
        split=config.eval_split, train=False, crop_size=config.image_size, shard_index=0, shard_count=1))
    return evaluate(model, loader, mode="center_crop")


def finetune_run(
    config: FinetuneConfig,
    *,
    encoder: str,
    out_dir: str | Path,
    model: str | None = None,
    resume: bool = False,
    stop: Callable[[int], bool] | None = None,
    log: Callable[[str], None] = _stderr,
) -> dict[str, Any]:
    """Trains and evaluates one run in ``out_dir`` (see the module docstring); returns ``run.json``'s content.

    ``resume=False`` on a directory that already holds checkpoints or a result raises (nothing is overwritten);
    ``resume=True`` returns a finished run's result as is, or continues from the newest checkpoint.
    """
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    if (out_dir / RUN_FILE).exists() or ckpt_dir.exists():
        if not resume:
            raise ValueError(f"out_dir={str(out_dir)!r} already holds a run; pass resume=True (--resume) to continue")
        if (out_dir / RUN_FILE).exists():
            import json

            return json.loads((out_dir / RUN_FILE).read_text())
    segmenter, info = build_model(config, encoder, model=model)
    optimizer = build_optimizer(segmenter, config)
    opt_state = optimizer.init(eqx.filter(segmenter, eqx.is_array))
    iterator = iter(segmentation_loader(SegmentationData(
        config.dataset_dir, batch_size=config.batch_size, num_classes=config.num_classes, split=config.train_split,
        train=True, crop_size=config.image_size, seed=config.seed, worker_count=config.workers,
        shard_index=0, shard_count=1)))
    start = 0
    restored = restore_checkpoint(ckpt_dir, segmenter, opt_state) if resume else None
    if restored is not None:
        segmenter, opt_state, start = restored.model, restored.opt_state, restored.step
        iterator.set_state(restored.data_state)
        log(f"resumed {out_dir} at step {start}/{config.steps}")
    mesh = _mesh(config.batch_size)
    if mesh is not None:
        replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
        segmenter, opt_state = eqx.filter_shard((segmenter, opt_state), replicated)
    k_train = jr.split(jr.key(config.seed), 3)[2]
    losses: list[float] = []
    timed_from: tuple[float, int] | None = None

    def checkpoint(done: int) -> None:
        save_checkpoint(ckpt_dir, done, segmenter, opt_state, data_state=iterator.get_state(),
                        keep=config.keep_checkpoints, metadata={"lr": config.lr, "wd": config.wd})

    with _StopOnSignal() as signals:
        for step in range(start, config.steps):
            batch = next(iterator)
            segmenter, opt_state, loss = train_step(
                segmenter, opt_state, _put(batch["image"], mesh), _put(batch["mask"].astype(np.int32), mesh),
                optimizer=optimizer, key=jr.fold_in(k_train, step))
            value = float(loss)
            if not math.isfinite(value):
                raise FloatingPointError(f"non-finite loss {value} at step {step} of {out_dir}")
            losses.append(value)
            done = step + 1
            if timed_from is None:
                timed_from = (time.perf_counter(), done)  # throughput excludes the compiling first step
            elif done % config.log_every == 0 or done == config.steps:
                rate = (done - timed_from[1]) * config.batch_size / (time.perf_counter() - timed_from[0])
                eta = (config.steps - done) * config.batch_size / rate
                log(f"{out_dir.name}: step {done}/{config.steps} loss {np.mean(losses[-config.log_every:]):.4f} "
                    f"| {rate:.1f} img/s | ETA {eta:.0f} s")
            if done % config.checkpoint_every == 0 or done == config.steps:
                checkpoint(done)
            if done < config.steps and (signals.requested or (stop is not None and stop(done))):
                checkpoint(done)
                log(f"{out_dir.name}: stopped at step {done}; continue with --resume")
                return {"status": "preempted", "step": done}
    metrics = _evaluate(segmenter, config)
    result = {
        "status": "done", "lr": config.lr, "wd": config.wd, "seed": config.seed, "steps": config.steps,
        "warmup_steps": config.warmup_steps, "batch_size": config.batch_size, "image_size": config.image_size,
        "eval_mode": config.eval_mode, "eval_split": config.eval_split, "miou": float(metrics["miou"]),
        "aacc": float(metrics["aacc"]), "iou": [float(v) for v in metrics["iou"]],
        "num_eval_pixels": metrics["num_pixels"], "final_loss": float(np.mean(losses[-10:])) if losses else None,
        "encoder": info.to_json(),
    }
    write_json_atomic(out_dir / RUN_FILE, result)
    log(f"{out_dir.name}: mIoU {100 * result['miou']:.2f} aAcc {100 * result['aacc']:.2f} ({config.eval_mode})")
    return result

"""One fine-tuning run (one LR, WD, seed) through the engine (``runloop.train``): build, train, evaluate.

``finetune_run(config, encoder=..., out_dir=...)`` writes into ``out_dir``::

    config.json                  what defines the run: the `SegmentationRun`, the encoder and the model preset
    metrics.jsonl                loss and grad norm every ``log_every`` steps, images/s, FLOPs; the final mIoU
    checkpoints/<step>/          orbax: model + optimizer state + step + key, data iterator state, last losses
    run.json                     lr, wd, seed, steps, mIoU, aAcc, per-class IoU, final loss, FLOPs (written last)

Randomness: ``key = jr.key(seed)`` split into encoder init (scratch only), head init and training; step ``s`` uses
``fold_in(k_train, s)`` for dropout, and the data order comes from grain's sampler seeded with ``seed``. A resumed
run restores the whole state and the data iterator's position, so it continues exactly where the interrupted one
stopped, and must be the same run (a different encoder, length, LR, ... is an error). SIGTERM/SIGINT (or
``stop(step)`` returning True) save a checkpoint and return ``{"status": "preempted"}``.

Data parallelism: with several devices and a batch divisible by their number, batches are split over all of
them and the state is replicated; otherwise one device runs (and says so).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.random as jr
import numpy as np
import optax
import runloop
from runloop.optim.sam import sam

from ..encoders import load_encoder
from ..records import EncoderInfo
from ..transfer_run import RUN_FILE, data_parallel_mesh, run_in_directory
from .data import SegmentationData, decoded_loader, segmentation_loader
from .device_augment import DeviceAugment, device_augment_for, prepare_decoded_batch
from .finetune import evaluate, init_finetune_state, make_finetune_step, prepare_batch
from .optim import finetune_optimizer, warmup_poly_schedule
from .segmenter import Segmenter, create_segmenter, segmenter_weight_decay_mask
from .spec import SegmentationRun
from .transfer_data import whole_image_batches

__all__ = ["RUN_FILE", "build_model", "segmentation_optimizer", "data_parallel_mesh", "finetune_run", "run_name"]

# How a run is executed, never what it computes: may differ when it is resumed.
MAY_CHANGE = tuple(f"finetune.{name}" for name in ("checkpoint_every", "keep_checkpoints", "log_every", "workers",
                                                   "eval_batch_size", "tensorboard"))


def run_name(lr: float, wd: float, seed: int) -> str:
    """The sub-directory name of one run, e.g. ``lr0.0001-wd0.05-seed0``."""
    return f"lr{lr:g}-wd{wd:g}-seed{seed}"


def build_model(config: SegmentationRun, encoder: str, *, model: str | None = None) -> tuple[Segmenter, EncoderInfo]:
    """The `Segmenter` a run starts from (encoder per `load_encoder`, head initialised from the seed)."""
    k_encoder, k_head, _ = jr.split(jr.key(config.seed), 3)
    vit, info = load_encoder(encoder, model=model, key=k_encoder, image_size=config.spec.image_size,
                             mean=config.encoder_mean, std=config.encoder_std)
    segmenter = create_segmenter(vit, config.num_classes, key=k_head, image_size=config.spec.image_size,
                                 head_channels=config.spec.head_channels, norm_groups=config.spec.norm_groups)
    return segmenter, info


def segmentation_optimizer(model: Segmenter, config: SegmentationRun) -> optax.GradientTransformation:
    """Adam(0.9, 0.999, 1e-8) + constant decoupled weight decay + warmup/poly schedule + clip 1 (the study);
    with ``config.spec.sam_rho``, SAM first (`runloop.optim.sam.sam`: the gradient at the perturbed point goes on),
    per slice of the batch with ``config.spec.sam_shards`` (its step: ``make_finetune_step(..., shards=...)``)."""
    schedule = warmup_poly_schedule(config.lr, config.steps, config.warmup_steps)
    optimizer = finetune_optimizer(schedule, config.wd, decay_mask=segmenter_weight_decay_mask(model))
    if config.spec.sam_rho is None:
        return optimizer
    return optax.chain(sam(config.spec.sam_rho, per_device=config.spec.sam_shards is not None), optimizer)


def _evaluate(model: Segmenter, config: SegmentationRun) -> dict[str, Any]:
    if config.spec.eval_mode == "slide":
        batches = whole_image_batches(config.dataset_dir, config.eval_split, config.num_classes,
                                      short_side=config.spec.image_size)
        metrics = evaluate(model, batches, mode="slide")
    else:
        metrics = evaluate(model, segmentation_loader(SegmentationData(
            config.dataset_dir, batch_size=config.spec.eval_batch_size, num_classes=config.num_classes,
            split=config.eval_split, train=False, crop_size=config.spec.image_size, shard_index=0, shard_count=1)),
            mode="center_crop")
    iou = [None if not np.isfinite(v) else float(v) for v in metrics["iou"]]
    return {"miou": float(metrics["miou"]), "aacc": float(metrics["aacc"]), "iou": iou,
            "num_pixels": int(metrics["num_pixels"])}


def finetune_task(segmenter: Segmenter, config: SegmentationRun,
                  augment: DeviceAugment | None = None) -> runloop.TrainTask:
    """The engine's task: the state (the segmenter passed in, not compiled in), the step, batch checks, eval.
    ``augment``: the step augments decoded batches on the device (`device_augment`)."""
    optimizer = segmentation_optimizer(segmenter, config)
    k_train = jr.split(jr.key(config.seed), 3)[2]
    prepare = prepare_batch if augment is None else prepare_decoded_batch(augment.image_hw)
    return runloop.TrainTask(init=lambda model: init_finetune_state(model, optimizer, key=k_train),
                             init_args=(segmenter,),
                             step=make_finetune_step(optimizer, shards=config.spec.sam_shards, augment=augment),
                             prepare_batch=prepare, evaluate=lambda state, step: _evaluate(state.model, config))


# Options added after runs were first written, with the value every earlier run had: recorded only when a run
# differs from it, so a run directory from before the option still passes the same-run check on resume.
LATER_OPTIONS = {"sam_rho": None, "sam_shards": None, "photometric": "byol", "augment": "host", "encoder_mean": None,
                 "encoder_std": None}


def finetune_run(config: SegmentationRun, *, encoder: str, out_dir: str | Path, model: str | None = None,
                 **options: Any) -> dict[str, Any]:
    """Trains and evaluates one run in ``out_dir`` (see the module docstring); returns ``run.json``'s content,
    or ``{"status": "preempted", "step": s}``. ``options``: `segtransfer.transfer_run.run_in_directory`'s
    ``resume`` (False: a directory that holds a run is an error; True: continue it, or return its result),
    ``stop``, ``log`` and ``resume_flag``."""
    spec = config.spec

    def start() -> tuple[runloop.TrainTask, Any, EncoderInfo]:
        segmenter, info = build_model(config, encoder, model=model)
        augment = device_augment_for(spec.augment, photometric=spec.photometric, directory=config.dataset_dir,
                                     split=config.train_split, crop=spec.image_size)
        loader = segmentation_loader if augment is None else decoded_loader
        data = iter(loader(SegmentationData(
            config.dataset_dir, batch_size=spec.batch // jax.process_count(), num_classes=config.num_classes,
            split=config.train_split, train=True, crop_size=spec.image_size, seed=config.seed,
            worker_count=spec.workers, shard_index=jax.process_index(), shard_count=jax.process_count(),
            photometric=spec.photometric)))
        return finetune_task(segmenter, config, augment), data, info

    loop = runloop.LoopConfig(steps=config.steps, batch_size=spec.batch, log_every=spec.log_every,
                              checkpoint_every=spec.checkpoint_every, keep_checkpoints=spec.keep_checkpoints,
                              tensorboard=spec.tensorboard)
    return run_in_directory(
        out_dir, "finetune", config.to_json(), loop, encoder=encoder, model=model, later=LATER_OPTIONS,
        may_change=MAY_CHANGE, start=start, result=lambda metrics: _result(config, metrics),
        summary=lambda out: f"{Path(out_dir).name}: mIoU {_percent(out['miou'])} aAcc {_percent(out['aacc'])} "
                            f"({spec.eval_mode})", **options)


def _percent(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{100 * fraction:.2f}"  # None: undefined (no labelled pixel)


def _result(config: SegmentationRun, metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "lr": config.lr, "wd": config.wd, "seed": config.seed, "steps": config.steps,
        "warmup_steps": config.warmup_steps, "batch_size": config.spec.batch, "image_size": config.spec.image_size,
        "eval_mode": config.spec.eval_mode, "eval_split": config.eval_split, "miou": metrics["miou"],
        "aacc": metrics["aacc"], "iou": metrics["iou"], "num_eval_pixels": metrics["num_pixels"],
    }

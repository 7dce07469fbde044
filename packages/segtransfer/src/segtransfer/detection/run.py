"""One detection fine-tuning run (one seed) through the engine (``runloop.train``): build, train, evaluate.

``detection_run(config, encoder=..., out_dir=...)`` writes into ``out_dir``::

    config.json          what defines the run: the `DetectionRunConfig` (detector, recipe, data), encoder, preset
    metrics.jsonl        losses, grad norm and learning rate every ``log_every`` steps, images/s, FLOPs; then
                         the final evaluation's record (box and mask AP)
    checkpoints/<step>/  orbax: model + optimizer state + step + key, data iterator state, last losses, evals
    run.json             box and mask AP (the six COCO numbers each), final loss, FLOPs of the compiled step

It is the segmentation run's twin (`segtransfer.segmentation.run`; both live in
`segtransfer.transfer_run.run_in_directory`): same engine, run directory, lock, same-run check on resume, exact resume
(the data iterator's position is in the checkpoint; per-step randomness is ``fold_in(key, step)``), NaN guard and data
parallelism (`data_parallel_mesh`). The encoder comes from a pre-training run directory, a timm file or ``"scratch"``
(`segtransfer.load_encoder`); it normalises its [0, 1] input itself, and the pipeline pads with its mean so the padding
is 0 after normalisation. Evaluation runs once at the end, over every image of the evaluation split (pycocotools).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import jax.random as jr
import numpy as np
import runloop

from ..encoders import load_encoder
from ..records import EncoderInfo
from ..transfer_run import RUN_FILE, run_in_directory
from .data import DetectionData, detection_loader
from .evaluate import evaluate_detector
from .model import MaskRCNN, create_detector
from .objective import BATCH_FIELDS
from .optim import detection_optimizer
from .run_config import HOW_FIELDS, DetectionRunConfig
from .train_step import init_detection_state, make_detection_step

__all__ = ["RUN_FILE", "build_detector", "detection_task", "detection_run", "prepare_batch"]

MAY_CHANGE = tuple(f"detection.{name}" for name in HOW_FIELDS)
# Options added after runs were first written, with the value every earlier run had: recorded only when given.
LATER_OPTIONS = {"encoder_mean": None, "encoder_std": None}


def build_detector(config: DetectionRunConfig, encoder: str, *, model: str | None = None
                   ) -> tuple[MaskRCNN, EncoderInfo]:
    """The `MaskRCNN` a run starts from (encoder per `load_encoder` with the recipe's drop path; heads
    initialised from the seed) and the encoder's provenance."""
    k_encoder, k_heads, _ = jr.split(jr.key(config.seed), 3)
    vit, info = load_encoder(encoder, model=model, key=k_encoder, image_size=config.detector.image_size,
                             mean=config.encoder_mean, std=config.encoder_std)
    return create_detector(vit, config.detector, key=k_heads, drop_path=config.recipe.drop_path), info


def _pad_value(model: MaskRCNN) -> tuple[float, float, float]:
    mean = tuple(float(np.clip(m, 0.0, 1.0)) for m in model.encoder.config.mean)
    return mean if len(mean) == 3 else (0.0, 0.0, 0.0)


def data_config(config: DetectionRunConfig, model: MaskRCNN, *, train: bool) -> DetectionData:
    """The pipeline of the run's training (this process's shard) or evaluation (every image, one process)."""
    common = dict(image_size=config.detector.image_size, max_objects=config.max_objects, pad_value=_pad_value(model))
    if train:
        return DetectionData(
            config.dataset_dir, batch_size=config.recipe.batch_size // jax.process_count(), split=config.train_split,
            train=True, truncate=config.truncate, min_scale=config.min_scale, max_scale=config.max_scale,
            seed=config.seed, worker_count=config.workers,
            shard_index=jax.process_index(), shard_count=jax.process_count(), **common)
    # The ground truth of evaluation comes from the records (coco_ground_truth), not from the padded objects.
    return DetectionData(config.dataset_dir, batch_size=config.eval_batch_size, split=config.eval_split, train=False,
                         truncate=True, shard_index=0, shard_count=1, **common)


def prepare_batch(batch: dict[str, Any]) -> dict[str, np.ndarray]:
    """Host side: the fields the step reads (`BATCH_FIELDS`); the pipeline's bookkeeping stays on the host."""
    missing = [name for name in BATCH_FIELDS if name not in batch]
    if missing:
        raise ValueError(f"batch lacks {missing}; a detection batch has {BATCH_FIELDS} (segtransfer.detection.data)")
    return {name: batch[name] for name in BATCH_FIELDS}


def _evaluate(model: MaskRCNN, config: DetectionRunConfig) -> dict[str, Any]:
    metrics = evaluate_detector(model, data_config(config, model, train=False))
    return {"box_AP": metrics["bbox"]["AP"], "mask_AP": metrics["segm"]["AP"], "bbox": metrics["bbox"],
            "segm": metrics["segm"], "num_images": metrics["num_images"],
            "num_detections": metrics["num_detections"], "inexact_images": metrics["inexact_images"]}


def detection_task(detector: MaskRCNN, config: DetectionRunConfig) -> runloop.TrainTask:
    """The engine's task: the state (the detector passed in, not compiled in), the step, batch selection, eval."""
    optimizer = detection_optimizer(detector, config.recipe)
    k_train = jr.split(jr.key(config.seed), 3)[2]
    return runloop.TrainTask(
        init=lambda model: init_detection_state(model, optimizer, key=k_train), init_args=(detector,),
        step=make_detection_step(optimizer, schedule=config.recipe.schedule()), prepare_batch=prepare_batch,
        evaluate=lambda state, step: _evaluate(state.model, config))


def detection_run(config: DetectionRunConfig, *, encoder: str, out_dir: str | Path, model: str | None = None,
                  **options: Any) -> dict[str, Any]:
    """Trains and evaluates one run in ``out_dir`` (see the module docstring); returns ``run.json``'s content,
    or ``{"status": "preempted", "step": s}``. ``options``: `segtransfer.transfer_run.run_in_directory`'s
    ``resume``, ``stop``, ``log`` and ``resume_flag``."""
    recipe = config.recipe

    def start() -> tuple[runloop.TrainTask, Any, EncoderInfo]:
        detector, info = build_detector(config, encoder, model=model)
        data = iter(detection_loader(data_config(config, detector, train=True)))
        return detection_task(detector, config), data, info

    loop = runloop.LoopConfig(steps=recipe.steps, batch_size=recipe.batch_size, log_every=config.log_every,
                              checkpoint_every=config.checkpoint_every, keep_checkpoints=config.keep_checkpoints)
    return run_in_directory(
        out_dir, "detection", dataclasses.asdict(config), loop, encoder=encoder, model=model, later=LATER_OPTIONS,
        may_change=MAY_CHANGE, start=start, result=lambda metrics: _result(config, metrics),
        summary=lambda out: f"{Path(out_dir).name}: box AP {_ap(out['bbox']['AP'])} mask AP "
                            f"{_ap(out['segm']['AP'])} ({out['num_eval_images']} {config.eval_split} images)",
        **options)


def _ap(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.2f}"


def _result(config: DetectionRunConfig, metrics: dict[str, Any]) -> dict[str, Any]:
    recipe = config.recipe
    return {
        "seed": config.seed, "steps": recipe.steps, "warmup_steps": recipe.warmup_steps,
        "batch_size": recipe.batch_size, "image_size": recipe.image_size, "lr": recipe.peak_lr,
        "wd": recipe.weight_decay, "layer_decay": recipe.layer_decay, "num_classes": config.detector.num_classes,
        "eval_split": config.eval_split, "bbox": metrics["bbox"], "segm": metrics["segm"],
        "num_eval_images": metrics["num_images"], "num_detections": metrics["num_detections"],
        "inexact_images": metrics["inexact_images"],
    }

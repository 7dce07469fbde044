"""A detection fine-tuning study: one run per seed, medians, fine-tuning FLOPs, and ``result.json``.

``detection_study(config, encoder=..., out_dir=..., dataset=..., seeds=...)`` runs `detection_run` for every seed
in ``out_dir/runs/seed<s>/`` (each resumable on its own) while holding a lock on ``out_dir``, then writes
``out_dir/result.json`` (`DetectionResult`, last, atomically): the headline ``score`` is the median box
AP@[.5:.95] over seeds in percent; ``box``/``mask`` hold the median of each COCO number. The study's detection
protocol has no hyper-parameter grid (one recipe, `DETECTION_RECIPES`), so neither has this.

``run_detection(spec, encoder=..., out_dir=...)`` runs the study a `DetectionSpec` describes (what
``flopwise-finetune-det`` parses and a sweep's detection task holds): it resolves the dataset, records the
command that reruns the study in ``out_dir/command.txt`` and calls ``detection_study``; ``read_detection(out_dir)``
reads its ``result.json`` back.

FLOPs per step are those of the executable the engine compiled and ran (`runloop.LoopResult.flops_per_step`;
they do not depend on the seed); ``finetune_flops`` = per step x steps (one run: the study's compute axis),
``finetune_flops_all_runs`` = per step x steps x the runs done.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import flopdata
import numpy as np
import runloop

from .. import transfer_study
from ..records import DetectionResult, EncoderInfo
from ..transfer_run import encoder_source, stderr_log
from ..transfer_study import RESULT_FILE, check_seeds, read_result
from .coco_eval import AP_NAMES
from .dataset_info import describe_detection_dataset
from .run import detection_run
from .run_config import DetectionRunConfig
from .spec import COMMAND_FILE, DetectionSpec

__all__ = ["RESULT_FILE", "check_study_dir", "detection_study", "read_detection", "run_detection", "run_dir_name"]


def run_dir_name(seed: int) -> str:
    """The sub-directory of one seed's run, e.g. ``seed0``."""
    return f"seed{seed}"


def check_study_dir(out_dir: str | Path, *, resume: bool, resume_flag: str = "resume=True") -> None:
    """ValueError, before anything is written, when ``out_dir`` already holds a result and ``resume`` is off, or
    ``resume`` is on and there is nothing to resume."""
    transfer_study.check_study_dir(out_dir, resume=resume, resume_flag=resume_flag, runs="detection runs")


def _median(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.median(finite)) if finite else None


def _medians(runs: list[dict[str, Any]], which: str) -> dict[str, float | None]:
    return {name: _median([r[which].get(name) for r in runs]) for name in AP_NAMES}


def detection_study(
    config: DetectionRunConfig,
    *,
    encoder: str,
    out_dir: str | Path,
    dataset: str,
    model: str | None = None,
    seeds: Sequence[int] = (0,),
    resume: bool = False,
    log: Callable[[str], None] = stderr_log,
    stop: Callable[[int], bool] | None = None,
    resume_flag: str = "resume=True",
    command: str | None = None,
) -> dict[str, Any]:
    """Runs every seed, writes and returns ``out_dir/result.json`` (module docstring); ``{"status": "preempted"}``
    without a result when a run was stopped. ``dataset``: the name recorded in the result (e.g.
    "fmnist_scenes"). ``resume=True`` continues the runs already there (each must be the same run) and starts the
    missing ones; ``resume_flag`` is how the caller's users spell it (for errors); ``command``: the command that
    reruns the study, written to ``out_dir/command.txt``."""
    seeds, out_dir = [int(s) for s in seeds], Path(out_dir)
    check_seeds(seeds)
    check_study_dir(out_dir, resume=resume, resume_flag=resume_flag)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    with runloop.RunLock(out_dir / runloop.run_directory.LOCK_FILE):
        if command is not None:
            runloop.write_bytes_atomic(out_dir / COMMAND_FILE, (command + "\n").encode())
        for seed in seeds:
            run_dir = out_dir / "runs" / run_dir_name(seed)
            result = detection_run(dataclasses.replace(config, seed=seed), encoder=encoder, model=model,
                                   out_dir=run_dir, resume=resume and runloop.holds_run(run_dir), stop=stop,
                                   log=log, resume_flag=resume_flag)
            if result["status"] != "done":
                return {"status": "preempted"}
            runs.append(result)
        record = _record(config, dataset, seeds, runs)
        record.write(out_dir / RESULT_FILE)
    return record.to_json()


def _record(config: DetectionRunConfig, dataset: str, seeds: list[int], runs: list[dict[str, Any]]
            ) -> DetectionResult:
    first, recipe = runs[0], config.recipe
    per_step = first["flops_per_step"]
    per_seed = {which: [r[which]["AP"] for r in runs] for which in ("bbox", "segm")}
    if any(v is None or not np.isfinite(v) for values in per_seed.values() for v in values):
        raise ValueError(f"AP is undefined on {config.dataset_dir} {config.eval_split}: it has no ground-truth "
                         f"object (box AP per seed {per_seed['bbox']}, mask AP {per_seed['segm']})")
    box, mask = _medians(runs, "bbox"), _medians(runs, "segm")
    return DetectionResult(
        dataset=dataset, score=box["AP"], box=box, mask=mask, seeds=seeds, per_seed_box_ap=per_seed["bbox"],
        per_seed_mask_ap=per_seed["segm"],
        finetune_flops=None if per_step is None else per_step * recipe.steps, finetune_flops_per_step=per_step,
        finetune_flops_all_runs=None if per_step is None else per_step * recipe.steps * len(runs),
        finetune_macs_per_step=first["macs_per_step"],
        finetune_flops_source="compiled step (runloop)" if per_step is not None else "not measured",
        steps=recipe.steps, warmup_steps=recipe.warmup_steps, batch_size=recipe.batch_size,
        image_size=recipe.image_size, lr=recipe.peak_lr, wd=recipe.weight_decay, layer_decay=recipe.layer_decay,
        num_classes=config.detector.num_classes, eval_split=config.eval_split,
        num_eval_images=first["num_eval_images"], encoder=EncoderInfo.from_json(first["encoder"]))


def run_detection(spec: DetectionSpec, *, encoder: str, out_dir: str | Path, model: str | None = None,
                  seeds: Sequence[int] | None = None, data_dir: str | Path | None = None,
                  mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                  **options: Any) -> dict[str, Any]:
    """Runs the study ``spec`` describes for ``encoder`` in ``out_dir`` and returns its ``result.json``.

    Resolves ``spec.dataset`` under ``data_dir`` (`flopdata.resolve`: an embedded set is built on first use),
    records the ``flopwise-finetune-det`` command that reruns the study in ``out_dir/command.txt`` and calls
    `detection_study` with ``seeds`` (default 0..spec.seeds-1); ``mean``/``std``: a timm weights file's input
    normalisation where its own files do not say; ``options``: `detection_study`'s ``resume``, ``log``,
    ``stop``, ``resume_flag``."""
    spec.validate()
    seeds = list(range(spec.seeds)) if seeds is None else list(seeds)
    data_dir = Path(data_dir) if data_dir is not None else flopdata.default_data_dir()
    info = describe_detection_dataset(flopdata.resolve(spec.dataset, data_dir=data_dir))
    command = spec.command(encoder=encoder_source(encoder), out_dir=str(Path(out_dir).resolve()), model=model,
                           data_dir=str(data_dir.resolve()), seeds=seeds or None, mean=mean, std=std)
    return detection_study(spec.run_config(info, mean=mean, std=std), encoder=encoder, out_dir=out_dir,
                           dataset=spec.dataset, model=model, seeds=seeds, command=command, **options)


def read_detection(out_dir: str | Path) -> dict[str, Any] | None:
    """The finished ``out_dir/result.json`` of a detection study (None when there is none yet); ValueError naming
    the file when it is not a detection result (`DetectionResult`)."""
    return read_result(out_dir, DetectionResult)

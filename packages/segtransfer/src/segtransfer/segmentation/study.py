"""The study's selection over runs: LR x WD grid, median over seeds, fine-tuning FLOPs, and ``result.json``.

``run_study(base, encoder=..., out_dir=..., grid=..., seeds=...)``:

1. with ``grid`` (e.g. `protocol.LR_GRID` x `protocol.WD_GRID`), every (lr, wd) is fine-tuned with the first seed
   and the best mIoU on the evaluation split picks the configuration (the study selects on ADE20K val too);
   without it, ``base.lr``/``base.wd`` is the configuration;
2. the chosen configuration is repeated for every seed; ``miou`` and ``aacc`` are the medians over seeds, ``iou``
   the per-class median (null for classes absent from the split);
3. FLOPs per step are those of the executable the engine compiled and ran for the chosen configuration (they do
   not depend on lr, wd, seed; `train_step_cost` measures the same step abstractly for runs that did not record
   them); ``finetune_flops`` = per step x steps of one run of the chosen configuration (what the study's compute
   axis counts), ``finetune_flops_all_runs`` adds every grid and seed run actually done.

Runs live in ``out_dir/runs/<lr>-<wd>-<seed>/`` and are resumable one by one; the study holds a lock on
``out_dir`` while it runs; ``result.json`` (`FinetuneResult`) is written last, atomically.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import flopdata
import numpy as np
import runloop

from ..encoders import check_provenance
from ..records import EncoderInfo, FinetuneResult
from ..transfer_run import encoder_source, stderr_log
from ..transfer_study import RESULT_FILE, check_seeds, check_study_dir, read_result
from .device_augment import device_augment_for
from .run import build_model, finetune_run, run_name, segmentation_optimizer
from .spec import COMMAND_FILE, SegmentationRun, SegmentationSpec
from .step_flops import train_step_cost
from .transfer_data import describe_segmentation_dataset

__all__ = ["check_out_dir", "read_segmentation", "run_segmentation", "run_study", "RESULT_FILE"]

OneRun = Callable[[float, float, int], "dict[str, Any] | None"]


def _median_iou(per_seed: list[list[float]]) -> list[float | None]:
    table = np.asarray(per_seed, np.float64)  # NaN where a class has no union in the split
    out = []
    for column in table.T:
        finite = column[np.isfinite(column)]
        out.append(float(np.median(finite)) if finite.size else None)
    return out


def _flops(chosen: dict[str, Any], config: SegmentationRun, encoder: str, model: str | None
           ) -> tuple[float, float, str]:
    """(FLOPs, MACs, source) per step of the chosen run as the engine measured them, or measured abstractly."""
    if chosen.get("flops_per_step") is not None:
        return chosen["flops_per_step"], chosen["macs_per_step"], "compiled step (runloop)"
    segmenter, _ = build_model(config, encoder, model=model)
    cost = train_step_cost(segmenter, segmentation_optimizer(segmenter, config), batch_size=config.spec.batch,
                           image_size=config.spec.image_size, shards=config.spec.sam_shards)
    return cost.flops, cost.macs, "abstract step (train_step_cost): the run did not record its FLOPs"


def _check(seeds: list[int], grid: Sequence[tuple[float, float]] | None, out_dir: Path, resume: bool,
           resume_flag: str) -> None:
    check_seeds(seeds)
    if grid is not None and not grid:
        raise ValueError("grid=[]: expected at least one (lr, wd) pair, or None for base.lr/base.wd")
    check_out_dir(out_dir, resume=resume, resume_flag=resume_flag)


def check_out_dir(out_dir: str | Path, *, resume: bool, resume_flag: str = "resume=True") -> None:
    """A new study needs an ``out_dir`` without a result; a resumed one needs its runs there (ValueError)."""
    check_study_dir(out_dir, resume=resume, resume_flag=resume_flag, runs="fine-tuning runs")


def _select(base: SegmentationRun, grid: Sequence[tuple[float, float]] | None, seeds: list[int], one: OneRun,
            log: Callable[[str], None]) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]]] | None:
    """Grid search with the first seed (if any), then every seed of the chosen (lr, wd); None when preempted.
    Returns (grid rows or None, the chosen configuration's run results, one per seed)."""
    grid_rows, chosen = None, []
    lr, wd = base.lr, base.wd
    if grid is not None:
        grid_rows, results = [], {}
        for g_lr, g_wd in grid:
            if (result := one(g_lr, g_wd, seeds[0])) is None:
                return None
            grid_rows.append({"lr": g_lr, "wd": g_wd, "miou": result["miou"]})
            results[g_lr, g_wd] = result
        best = max(grid_rows, key=lambda r: r["miou"])
        lr, wd = best["lr"], best["wd"]
        chosen = [results[lr, wd]]
        log(f"grid: best lr {lr:g} wd {wd:g} (mIoU {100 * best['miou']:.2f}) of {len(grid_rows)}")
    for seed in seeds[len(chosen):]:
        if (result := one(lr, wd, seed)) is None:
            return None
        chosen.append(result)
    return grid_rows, chosen


def run_study(
    base: SegmentationRun,
    *,
    encoder: str,
    out_dir: str | Path,
    dataset: str,
    model: str | None = None,
    grid: Sequence[tuple[float, float]] | None = None,
    seeds: Sequence[int] = (0,),
    resume: bool = False,
    log: Callable[[str], None] = stderr_log,
    stop: Callable[[int], bool] | None = None,
    resume_flag: str = "resume=True",
    allow_unknown_flops: bool = False,
    allow_flag: str = "allow_unknown_flops=True",
    command: str | None = None,
) -> dict[str, Any]:
    """Runs the grid (if any) and the seeds, writes and returns ``out_dir/result.json`` (module docstring).

    ``dataset``: the name recorded in the result (e.g. "fmnist_scenes"). ``resume=True`` continues the runs
    already there (each must be the same run) and starts the missing ones; ``resume_flag`` is how the caller's
    users spell it (for errors). An encoder run directory without ``summary.json`` is an error unless
    ``allow_unknown_flops`` (`check_provenance`; ``allow_flag`` spells it for errors). Returns
    ``{"status": "preempted"}`` without writing a result if a run was stopped. ``command``: the command line
    that reruns the study, written to ``out_dir/command.txt`` once the checks have passed.
    """
    seeds, out_dir = list(seeds), Path(out_dir)
    check_provenance(encoder, allow_unknown_flops=allow_unknown_flops, allow_flag=allow_flag)
    _check(seeds, grid, out_dir, resume, resume_flag)
    done: list[dict[str, Any]] = []

    def one(lr: float, wd: float, seed: int) -> dict[str, Any] | None:
        run_dir = out_dir / "runs" / run_name(lr, wd, seed)
        result = finetune_run(dataclasses.replace(base, lr=lr, wd=wd, seed=seed), encoder=encoder, model=model,
                              out_dir=run_dir, stop=stop, log=log, resume=resume and runloop.holds_run(run_dir),
                              resume_flag=resume_flag)
        if result["status"] != "done":
            return None
        done.append(result)
        return result

    out_dir.mkdir(parents=True, exist_ok=True)
    with runloop.RunLock(out_dir / runloop.run_directory.LOCK_FILE):
        if command is not None:
            runloop.write_bytes_atomic(out_dir / COMMAND_FILE, (command + "\n").encode())
        selected = _select(base, grid, seeds, one, log)
        if selected is None:
            return {"status": "preempted"}
        grid_rows, chosen = selected
        config = dataclasses.replace(base, lr=chosen[0]["lr"], wd=chosen[0]["wd"], seed=seeds[0])
        flops, macs, source = _flops(chosen[0], config, encoder, model)
        per_seed = [r["miou"] for r in chosen]
        record = FinetuneResult(
            dataset=dataset, miou=float(np.median(per_seed)), aacc=float(np.median([r["aacc"] for r in chosen])),
            iou=_median_iou([[np.nan if v is None else v for v in r["iou"]] for r in chosen]),
            finetune_flops=flops * config.steps, finetune_flops_per_step=flops,
            finetune_flops_all_runs=flops * config.steps * len(done), finetune_macs_per_step=macs,
            finetune_flops_source=source, steps=config.steps, warmup_steps=config.warmup_steps,
            batch_size=config.spec.batch, image_size=config.spec.image_size, lr=config.lr, wd=config.wd,
            seeds=seeds, per_seed_miou=per_seed, eval_mode=config.spec.eval_mode, eval_split=config.eval_split,
            num_classes=config.num_classes, encoder=EncoderInfo.from_json(chosen[0]["encoder"]),
            grid=grid_rows)
        record.write(out_dir / RESULT_FILE)
    return record.to_json()


def run_segmentation(
    spec: SegmentationSpec,
    *,
    encoder: str,
    out_dir: str | Path,
    model: str | None = None,
    seeds: Sequence[int] | None = None,
    data_dir: str | Path | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Runs the study ``spec`` describes for ``encoder`` in ``out_dir`` and returns its ``result.json``.

    Resolves ``spec.dataset`` under ``data_dir`` (`flopdata.resolve`: an embedded set is built on first use),
    records the ``flopwise-finetune-seg`` command that reruns the study in ``out_dir/command.txt`` and calls
    `run_study` with the spec's grid and ``seeds`` (default 0..spec.seeds-1); ``mean``/``std``: a timm weights
    file's input normalisation where its own files do not say (`segtransfer.encoders.timm_normalisation`);
    ``options``: `run_study`'s ``resume``, ``log``, ``stop``, ``resume_flag``, ``allow_unknown_flops``,
    ``allow_flag``."""
    spec.validate()
    seeds = list(range(spec.seeds)) if seeds is None else list(seeds)
    data_dir = Path(data_dir) if data_dir is not None else flopdata.default_data_dir()
    info = describe_segmentation_dataset(flopdata.resolve(spec.dataset, data_dir=data_dir))
    base = SegmentationRun(spec, str(info.directory), info.num_classes, info.eval_split,
                           spec.total_steps(info.train_size), spec.lrs[0], spec.wds[0], seeds[0] if seeds else 0,
                           encoder_mean=None if mean is None else tuple(mean),
                           encoder_std=None if std is None else tuple(std))
    # augment="device" on a split whose images vary in size: refused before anything is written
    device_augment_for(spec.augment, photometric=spec.photometric, directory=base.dataset_dir,
                       split=base.train_split, crop=spec.image_size)
    command = spec.command(encoder=encoder_source(encoder), out_dir=str(Path(out_dir).resolve()), model=model,
                           data_dir=str(data_dir.resolve()), seeds=seeds or None, mean=mean, std=std)
    return run_study(base, encoder=encoder, out_dir=out_dir, dataset=spec.dataset, model=model, grid=spec.grid,
                     seeds=seeds, command=command, **options)


def read_segmentation(out_dir: str | Path) -> dict[str, Any] | None:
    """The finished ``out_dir/result.json`` of a study (None when there is none yet); ValueError naming the
    file when it is not a fine-tuning result."""
    return read_result(out_dir, FinetuneResult)

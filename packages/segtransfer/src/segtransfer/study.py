"""The study's selection over runs: LR x WD grid, median over seeds, fine-tuning FLOPs, and ``result.json``.

``run_study(base, encoder=..., out_dir=..., grid=..., seeds=...)``:

1. with ``grid`` (e.g. `protocol.LR_GRID` x `protocol.WD_GRID`), every (lr, wd) is fine-tuned with the first seed
   and the best mIoU on the evaluation split picks the configuration (the study selects on ADE20K val too);
   without it, ``base.lr``/``base.wd`` is the configuration;
2. the chosen configuration is repeated for every seed; ``miou`` and ``aacc`` are the medians over seeds, ``iou``
   the per-class median (null for classes absent from the split);
3. FLOPs per step are measured once with flopmeter on the real train step (they do not depend on lr, wd, seed);
   ``finetune_flops`` = per step x steps of one run of the chosen configuration (what the study's compute axis
   counts), ``finetune_flops_all_runs`` adds every grid and seed run actually done.

Runs live in ``out_dir/runs/<lr>-<wd>-<seed>/`` and are resumable one by one; ``result.json`` is written last,
atomically, in the schema `tools/report.py` reads.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .json_files import write_json_atomic
from .protocol import FinetuneConfig
from .run import build_model, build_optimizer, finetune_run, run_name
from .step_flops import train_step_cost

__all__ = ["run_study", "study_grid", "RESULT_FILE"]

RESULT_FILE = "result.json"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _median_iou(per_seed: list[list[float]]) -> list[float | None]:
    table = np.asarray(per_seed, np.float64)  # NaN where a class has no union in the split
    out = []
    for column in table.T:
        finite = column[np.isfinite(column)]
        out.append(float(np.median(finite)) if finite.size else None)
    return out


def run_study(
    base: FinetuneConfig,
    *,
    encoder: str,
    out_dir: str | Path,
    dataset: str,
    model: str | None = None,
    grid: Sequence[tuple[float, float]] | None = None,
    seeds: Sequence[int] = (0,),
    resume: bool = False,
    log: Callable[[str], None] = _stderr,
    stop: Callable[[int], bool] | None = None,
) -> dict[str, Any]:
    """Runs the grid (if any) and the seeds, writes and returns ``out_dir/result.json`` (module docstring).

    ``dataset``: the name recorded in the result (e.g. "fmnist_scenes"). Returns ``{"status": "preempted"}``
    without writing a result if a run was stopped.
    """
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds={seeds!r}: expected distinct seeds, at least one")
    if grid is not None and not grid:
        raise ValueError("grid=[]: expected at least one (lr, wd) pair, or None for base.lr/base.wd")
    out_dir = Path(out_dir)
    if (out_dir / RESULT_FILE).exists() and not resume:
        raise ValueError(f"out_dir={str(out_dir)!r} already holds {RESULT_FILE}; pass resume=True or another dir")
    runs: list[dict[str, Any]] = []

    def one(lr: float, wd: float, seed: int) -> dict[str, Any] | None:
        config = dataclasses.replace(base, lr=lr, wd=wd, seed=seed)
        result = finetune_run(config, encoder=encoder, model=model, out_dir=out_dir / "runs" / run_name(lr, wd, seed),
                              resume=resume, stop=stop, log=log)
        if result["status"] != "done":
            return None
        runs.append(result)
        return result

    grid_rows = []
    if grid is not None:
        for lr, wd in grid:
            result = one(lr, wd, seeds[0])
            if result is None:
                return {"status": "preempted"}
            grid_rows.append({"lr": lr, "wd": wd, "miou": result["miou"]})
        best = max(grid_rows, key=lambda r: r["miou"])
        lr, wd = best["lr"], best["wd"]
        log(f"grid: best lr {lr:g} wd {wd:g} (mIoU {100 * best['miou']:.2f}) of {len(grid_rows)}")
        chosen = [next(r for r in runs if r["lr"] == lr and r["wd"] == wd)]
    else:
        lr, wd = base.lr, base.wd
        chosen = []
    for seed in seeds[len(chosen):]:
        result = one(lr, wd, seed)
        if result is None:
            return {"status": "preempted"}
        chosen.append(result)
    config = dataclasses.replace(base, lr=lr, wd=wd, seed=seeds[0])
    segmenter, info = build_model(config, encoder, model=model)
    cost = train_step_cost(segmenter, build_optimizer(segmenter, config), batch_size=config.batch_size,
                           image_size=config.image_size)
    per_seed = [r["miou"] for r in chosen]
    result: dict[str, Any] = {
        "dataset": dataset,
        "miou": float(np.median(per_seed)),
        "aacc": float(np.median([r["aacc"] for r in chosen])),
        "iou": _median_iou([[np.nan if v is None else v for v in r["iou"]] for r in chosen]),
        "finetune_flops": cost.flops * config.steps,
        "finetune_flops_per_step": cost.flops,
        "finetune_flops_all_runs": cost.flops * config.steps * len(runs),
        "finetune_macs_per_step": cost.macs,
        "steps": config.steps,
        "warmup_steps": config.warmup_steps,
        "batch_size": config.batch_size,
        "image_size": config.image_size,
        "lr": lr,
        "wd": wd,
        "seeds": seeds,
        "per_seed_miou": per_seed,
        "eval_mode": config.eval_mode,
        "eval_split": config.eval_split,
        "num_classes": config.num_classes,
        "encoder": info.to_json(),
    }
    if grid is not None:
        result["grid"] = grid_rows
    write_json_atomic(out_dir / RESULT_FILE, result)
    return result


def study_grid(lrs: Sequence[float], wds: Sequence[float]) -> list[tuple[float, float]]:
    """All (lr, wd) pairs, LR-major (the order runs are done in)."""
    return list(itertools.product(lrs, wds))

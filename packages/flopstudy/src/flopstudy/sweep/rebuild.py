"""The sweep's results table, rebuilt from its run directories: one row per (run, task, seed).

`rebuild_results(out)` reads ``sweep.json`` (which runs, tasks and seeds the sweep holds) and, for each, the
files its stages wrote: ``spec.json``, ``flops.json``, ``pretrain/summary.json``, the task's result, the failure
and claim files. Nothing else feeds the table, so it can never disagree with the run directories; rebuilding
twice gives byte-identical ``results.csv`` and ``results.jsonl`` (flopstudy's schema, `flopstudy.COLUMNS`).

Status of a row: "done" (the seed's score is in the task result), "failed" (the run or the task recorded an
error, in ``error``), "running" (a live executor holds the run's claim) or "pending". Columns filled: every axis;
FLOPs per step (whole program, measured on the compiled step; per device = whole / devices, data parallel),
device count, batch, encoder parameters, total pre-training FLOPs (per step x steps once pre-training finished;
0 for scratch), fine-tuning FLOPs (one run of the chosen configuration), pre-training wall time and the device it
ran on, MFU where the device has a datasheet peak in flopmeter's table, the study's CO2 model (`Co2Settings`) and
the local estimate when the trainer had a power figure, upstream loss and accuracy with their sources
(`flopstudy.results.upstream_columns`: held-out where recorded), the score; for the second
stage of a chain, its first stage's method, steps and FLOPs, which ``pretrain_flops`` includes. Extra columns:
``run_id``, ``task_id``, ``budget``, ``budget_unit`` and the task's own (e.g. ``finetune_lr``, ``finetune_wd``).
``seed_role``: 'explore' for the task's own seeds (``explore_seeds`` in ``sweep.json``), 'confirm' for the seeds
added to chosen points and for every scratch seed; a ``sweep.json`` from before seed roles records no explore
seeds, and its rows get no role (`ResultRow.role` then counts the pre-trained ones as explore).
``pretrain_seed``: which pre-training of its point the row's encoder is (``sweep.json``'s ``pretrain_seed``: k >=
1 for the repeats of ``config.pretrain_seeds``, 0 otherwise and for scratch).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import flopmeter

from ..budget.cost import throughput_model
from ..results.files import write_results_csv, write_results_jsonl
from ..results.rows import STATUS_DONE, ResultRow
from ..results.upstream_columns import upstream_columns
from ..specs.runs import RunSpec, TaskSpec
from ..specs.settings import Co2Settings
from ..stages.registry import get_task
from .claims import claim_holder
from .expansion import Plan
from .job import pretrain_steps
from .rundir import RunDir, read_json, read_task_result

__all__ = ["SWEEP_FILE", "build_rows", "read_sweep_file", "rebuild_results"]

SWEEP_FILE = "sweep.json"


def read_sweep_file(out: str | Path) -> tuple[list[tuple[RunSpec, list[tuple[TaskSpec, tuple[int, ...],
                                                                          tuple[int, ...] | None]], int]],
                                               Co2Settings]:
    """The plan recorded in ``out/sweep.json``: runs with their (task, seeds, explore seeds or None when the file
    predates seed roles) and their pre-training seed (`Plan.pretrain_seed`; 0 when the file predates repeats), and
    the CO2 settings."""
    data = read_json(Path(out) / SWEEP_FILE)
    if data is None:
        raise ValueError(f"{Path(out) / SWEEP_FILE} does not exist: {out} is not a sweep's output folder")
    plan = [(RunSpec.from_json(r["spec"]),
             [(TaskSpec.from_json(t["spec"]), tuple(t["seeds"]),
               tuple(t["explore_seeds"]) if "explore_seeds" in t else None) for t in r["tasks"]],
             int(r.get("pretrain_seed", 0)))
            for r in data["runs"]]
    return plan, Co2Settings(**data["co2"])


def _first_stage(out: str | Path, run: RunSpec) -> dict[str, Any]:
    """The first stage's columns of a chain's second stage (its FLOPs once it finished; None otherwise)."""
    first = RunDir(out, run.init)
    flops = read_json(first.flops_file)
    steps, per_step = pretrain_steps(run.init, flops), (flops or {}).get("flops_per_step")
    done = first.summary_file.exists()
    return {"prepretrain_method": run.init.method, "prepretrain_steps": steps,
            "prepretrain_flops": per_step * steps if per_step and steps and done else None}


def _upstream(rd: RunDir, flops: dict[str, Any] | None, root: str | Path) -> dict[str, Any]:
    """The run's pre-training columns from flops.json and summary.json (and its first stage's)."""
    run = rd.run
    if run.is_scratch:
        return {"pretrain_steps": 0, "pretrain_flops": 0.0}
    steps = pretrain_steps(run, flops)
    per_step = flops.get("flops_per_step") if flops else None
    summary = read_json(rd.summary_file) or {}
    devices = summary.get("devices")
    out: dict[str, Any] = {
        "pretrain_steps": steps, "pretrain_batch": run.batch, "params": (flops or {}).get("params"),
        "flops_per_step": per_step,
        "pretrain_flops": per_step * steps if per_step and steps and rd.summary_file.exists() else None,
        "num_devices": devices, "flops_per_step_per_device": per_step / devices if per_step and devices else None,
        "pretrain_seconds": summary.get("wall_seconds"), "local_kwh": summary.get("energy_kwh"),
        "local_kg_co2e": summary.get("kg_co2e"),
        **{k: v for k, v in upstream_columns(summary).items() if v is not None},
    }
    if run.init is not None:
        out |= _first_stage(root, run)
        own = out["pretrain_flops"]
        first = out["prepretrain_flops"]
        out["pretrain_flops"] = own + first if own is not None and first is not None else None
    kind = summary.get("device_kind")
    if kind:
        chip = flopmeter.HardwareTable.shipped().for_device_kind(kind)
        out["hardware"] = chip.name if chip is not None else kind
        rate = summary.get("images_per_second")
        if chip is not None and rate and per_step and devices:
            out["mfu"] = min(1.0, per_step * rate / run.batch / (chip.peak_flops * devices))
    return out


def _role(run: RunSpec, seed: int, explore: tuple[int, ...] | None) -> str | None:
    """The seed's role (module docstring); None without recorded explore seeds."""
    if explore is None:
        return None
    return "confirm" if run.is_scratch or seed not in explore else "explore"


def _task_rows(rd: RunDir, task: TaskSpec, seeds: tuple[int, ...], explore: tuple[int, ...] | None,
               base: dict[str, Any], error: str | None, running: bool) -> list[dict[str, Any]]:
    kind = get_task(task.kind)
    result, broken = read_task_result(rd, task)
    task_error = rd.task_failure(task)
    error = error or broken or (str(task_error.get("error")) if task_error else None)
    scores = dict(result.scores) if result is not None else {}
    rows = []
    for seed in sorted(set(seeds) | set(scores)):
        row = base | {"task": task.label, "task_id": task.task_id, "seed": seed, "score_metric": kind.score_metric,
                      "score": None, "seed_role": _role(rd.run, seed, explore)}
        if result is not None:
            row |= {"finetune_flops": result.finetune_flops, **result.extras}
        if seed in scores:
            row |= {"score": scores[seed], "status": STATUS_DONE}
        else:
            row |= {"status": "failed" if error else ("running" if running else "pending"), "error": error}
        rows.append(row)
    return rows


def _study_columns(rows: list[ResultRow], co2: Co2Settings) -> list[ResultRow]:
    """Adds the study's CO2 model: the configured fit, else one fitted on this sweep's own runs measured on
    ``co2.hardware`` x ``co2.chips`` (``flopstudy.throughput_model``); empty when neither exists."""
    if co2.fit_a is not None and co2.fit_b is not None:
        fit = flopmeter.PowerLawFit(co2.fit_a, co2.fit_b, float("nan"))
    else:
        fit = throughput_model(rows, hardware_name=co2.hardware, chips=co2.chips).fit
    if fit is None:
        return rows
    out = []
    for row in rows:
        if row.step_flops and row.pretrain_steps:
            fp = flopmeter.footprint(fit, flops_per_step=row.step_flops, steps=row.pretrain_steps, chips=co2.chips,
                                     hardware_name=co2.hardware, region_name=co2.region)
            row = dataclasses.replace(row, study_hours=fp.hours, study_kwh=fp.kwh, study_kg_co2e=fp.kg_co2e)
        out.append(row)
    return out


def build_rows(out: str | Path) -> list[ResultRow]:
    """Every row of the sweep in ``out`` (module docstring), in plan order."""
    plan, co2 = read_sweep_file(out)
    records: list[dict[str, Any]] = []
    for run, tasks, pretrain_seed in plan:
        rd = RunDir(out, run)
        failure = rd.failure()
        base = {"method": run.method, "variant": run.variant, "backbone": run.backbone,
                "pretrain_dataset": run.dataset, "run_dir": str(rd.path), "run_id": run.run_id,
                "budget": run.budget, "budget_unit": run.budget_unit, "pretrain_seed": pretrain_seed,
                **_upstream(rd, read_json(rd.flops_file), out)}
        running = claim_holder(rd.claim_file) is not None
        error = str(failure.get("error")) if failure else None
        for task, seeds, explore in tasks:
            records += _task_rows(rd, task, seeds, explore, base, error, running)
    rows = [_checked_row(r) for r in records]
    return _study_columns(rows, co2)


_AXES = ("method", "variant", "backbone", "pretrain_dataset", "task", "seed", "run_dir", "run_id", "task_id",
         "budget", "budget_unit", "score_metric", "pretrain_seed")


def _checked_row(record: dict[str, Any]) -> ResultRow:
    """The row of ``record``; one whose files hold a value out of the schema (a NaN loss, a 500% accuracy)
    becomes a failed row naming its run directory and the value, so one bad file never blocks the table."""
    try:
        return ResultRow.from_record(record)
    except ValueError as err:
        failed = {k: record.get(k) for k in _AXES} | {"pretrain_steps": None, "pretrain_flops": None,
                                                       "score": None, "status": "failed"}
        return ResultRow.from_record(failed | {"error": f"{record.get('run_dir')}: bad value: {err}"})


def rebuild_results(out: str | Path) -> Path:
    """Writes ``out/results.csv`` and ``out/results.jsonl`` from the run directories; returns the CSV path."""
    rows = build_rows(out)
    write_results_csv(rows, Path(out) / "results.csv")
    write_results_jsonl(rows, Path(out) / "results.jsonl")
    return Path(out) / "results.csv"


def sweep_file_record(plan: Plan, sweep_json: dict[str, Any], co2: Co2Settings) -> dict[str, Any]:
    """What ``sweep.json`` holds: the settings (for people) and the plan (for the table); a run's
    ``pretrain_seed`` only where it is a repeat (k >= 1), so the files of sweeps without repeats read as before."""
    return {"settings": sweep_json, "co2": dataclasses.asdict(co2),
            "runs": [{"run_id": run.run_id, "spec": run.to_json(),
                      **({"pretrain_seed": k} if (k := plan.pretrain_seed(run.run_id)) else {}),
                      "tasks": [{"task_id": t.spec.task_id, "spec": t.spec.to_json(), "seeds": list(t.seeds),
                                 "explore_seeds": list(t.explore)} for t in plan.tasks[run.run_id]]}
                     for run in plan.runs]}

"""Running a whole sweep: check, lay out, run every job, pick the points that get confirm seeds, run those.

``run_sweep(load_sweep("configs/demo.py"), "runs/demo")``:

1. before any run starts: expand the grid, build every run's method (a bad value is an error naming it; a user's
   method class that fails its own checks makes its run a recorded failure, and the sweep goes on), build
   the datasets the config asks for (every source checked before the first build writes), check every dataset
   and task (building the embedded Fashion-MNIST sets on first use, here, so workers never build one at the same
   time); create every run and task folder with its
   ``spec.json`` (a folder holding another spec is an error) and write ``sweep.json``;
2. run the jobs on the executor; after each finished job, rebuild the results table (the "record" stage) and
   report progress. A run another executor holds is waited for (polling its claim) and then revisited: its
   finished stages are skipped, so no stage runs twice;
3. with ``confirm_seeds > 0``: choose the best point per group on explore seeds only (`expansion.confirm_points`)
   and every scratch baseline, record their confirm seeds in ``sweep.json`` and run the missing seeds; with
   ``pretrain_seeds`` P > 1, also pre-train each chosen pre-trained point P - 1 more times (`Plan.with_confirm`)
   and fine-tune those encoders with the confirm seeds;
4. rebuild the table one last time and return the status.

JAX's persistent compilation cache is ``$FLOPWISE_JAX_CACHE`` if set (``off``: none), else ``OUT/.jax_cache``:
runs in one process, later sweeps and other workers reuse compiled steps (`runloop.enable_compilation_cache`, which
the driver and every worker call before their runs).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import flopcli
import runloop

from ..stages import Stages
from ..stages.registry import get_task
from .config import SweepSpec
from .executors import AbstractExecutor, LocalExecutor
from .expansion import Plan, confirm_points, expand
from .job import Job, JobOutcome
from .progress import SweepProgress, SweepStatus
from .rebuild import SWEEP_FILE, build_rows, rebuild_results, sweep_file_record
from .rundir import RunDir, write_json_atomic

__all__ = ["cache_dir_for", "prepare_sweep", "run_sweep"]


def cache_dir_for(out: str | Path) -> str | None:
    """Where the sweep's JAX compilation cache lives: ``$FLOPWISE_JAX_CACHE`` (None when ``off``) or
    ``OUT/.jax_cache`` (`runloop.compilation_cache_dir`)."""
    directory = runloop.compilation_cache_dir(Path(out) / ".jax_cache")
    return None if directory is None else str(directory)


def _write_plan(out: Path, sweep: SweepSpec, plan: Plan) -> None:
    record = sweep_file_record(plan, sweep.to_json(), sweep.co2)
    write_json_atomic(out / SWEEP_FILE, record)


def prepare_sweep(sweep: SweepSpec, out: str | Path, *, stages: object,
                  log: Callable[[str], None] = print) -> Plan:
    """Step 1 of the module docstring; returns the plan. Raises ValueError before any run starts, except for a
    run whose method is the user's class and fails its own checks (any exception, `flopcli.UserCodeError`): that
    run is recorded as failed (``failed.json``, stage "check") and the others go on."""
    out = Path(out)
    plan = expand(sweep)
    unusable: dict[str, BaseException] = {}  # runs of a user's method whose own checks fail: recorded as failed
    for run in plan.runs:
        try:
            stages.check_run(run)
        except flopcli.UserCodeError as err:
            unusable[run.run_id] = err
        except (TypeError, ValueError) as err:
            raise ValueError(f"{run.describe()}: {err}") from None
    data_dir = sweep.data_dir_for(out)
    for dataset in sweep.datasets:
        if dataset not in sweep.build_datasets:
            try:
                stages.check_dataset(dataset, data_dir=data_dir)
            except ValueError as err:
                raise ValueError(f"config.datasets: {err}") from None
    for name, options in sweep.build_datasets.items():  # every build checked before the first one writes
        try:
            stages.check_build(name, dict(options), data_dir=data_dir)
        except ValueError as err:
            raise ValueError(f"config.build_datasets.{name}: {err}") from None
    for name, options in sweep.build_datasets.items():
        stages.build_dataset(name, dict(options), data_dir=data_dir)
    for kind, settings in sweep.tasks.items():
        try:
            get_task(kind).check(settings, data_dir=data_dir)
        except ValueError as err:
            raise ValueError(f"config.tasks.{kind}: {err}") from None
    task_sets = [name for kind, settings in sweep.tasks.items() for name in get_task(kind).datasets(settings)]
    for dataset in dict.fromkeys([*sweep.datasets, *task_sets]):
        stages.ensure_dataset(dataset, data_dir=data_dir)
    for run in plan.runs:
        rd = RunDir(out, run)
        rd.ensure([t.spec for t in plan.tasks[run.run_id]])
        if run.run_id in unusable and rd.failure() is None:
            rd.record_failure("check", unusable[run.run_id])
            log(f"{run.run_id}: check failed: {unusable[run.run_id]}")
    _write_plan(out, sweep, plan)
    return plan


def _jobs(sweep: SweepSpec, out: Path, plan: Plan, runs: Sequence, *, retry_failed: bool) -> list[Job]:
    return [Job(str(out), run, plan.tasks[run.run_id], sweep.pretrain, sweep.data_dir_for(out), cache_dir_for(out),
                retry_failed) for run in runs]


def _run_all(jobs: list[Job], executor: AbstractExecutor, stages: object, progress: SweepProgress, out: Path, *,
             poll_seconds: float, log: Callable[[str], None]) -> list[JobOutcome]:
    """Runs ``jobs``; those another executor holds are revisited until none is held. Stops at a preemption."""
    final: list[JobOutcome] = []

    def on_outcome(outcome: JobOutcome) -> None:
        if outcome.executed:
            rebuild_results(out)
        progress.update(finished=int(outcome.status in ("done", "failed") and bool(outcome.executed)))

    while jobs:
        outcomes = executor.run(jobs, stages, on_outcome, log=log)
        final += [o for o in outcomes if o.status != "busy"]
        if any(o.status == "preempted" for o in outcomes):
            break
        busy = {o.run_id for o in outcomes if o.status == "busy"}
        jobs = [dataclasses.replace(j, retry_failed=False) for j in jobs if j.run.run_id in busy]
        if jobs:
            log(f"waiting for {len(jobs)} run(s) another executor holds ...")
            time.sleep(poll_seconds)
            progress.update()
    return final


def run_sweep(sweep: SweepSpec, out: str | Path, *, executor: AbstractExecutor | None = None,
              stages: object | None = None, retry_failed: bool = False, poll_seconds: float = 5.0,
              log: Callable[[str], None] = print) -> SweepStatus:
    """Runs ``sweep`` into ``out`` (module docstring) on ``executor`` (default: this process, one run after the
    other) with ``stages`` (default `flopstudy.stages.Stages`). ``retry_failed``: run failed runs again (their
    last error is kept as ``failed.previous.json``); otherwise they stay failed and are reported."""
    out, stages = Path(out), stages if stages is not None else Stages()
    executor = executor if executor is not None else LocalExecutor()
    plan = prepare_sweep(sweep, out, stages=stages, log=log)
    if (cache_dir := cache_dir_for(out)) is not None:
        runloop.enable_compilation_cache(cache_dir)
    progress = SweepProgress(out, plan, name=sweep.name, log=log)
    progress.update()
    outcomes = _run_all(_jobs(sweep, out, plan, plan.runs, retry_failed=retry_failed), executor, stages, progress,
                        out, poll_seconds=poll_seconds, log=log)
    preempted = any(o.status == "preempted" for o in outcomes)
    if sweep.confirm_seeds > 0 and not preempted:
        points = confirm_points(build_rows(out), sweep.confirm_by)
        plan = plan.with_confirm(points, sweep.confirm_seeds, sweep.pretrain_seeds)
        _write_plan(out, sweep, plan)
        progress.set_plan(plan)
        runs = {run_id for run_id, _ in points} | set(plan.repeats)
        log(f"confirm seeds: {sweep.confirm_seeds} seeds for {len(points)} point(s) (the best of each group of "
            f"{', '.join(sweep.confirm_by)} on its explore seeds, and scratch)")
        if plan.repeats:
            log(f"pre-training seeds: {sweep.pretrain_seeds} for each chosen pre-trained point "
                f"({len(plan.repeats)} more pre-training run(s))")
        chosen = [run for run in plan.runs if run.run_id in runs]
        _run_all(_jobs(sweep, out, plan, chosen, retry_failed=False), executor, stages, progress, out,
                 poll_seconds=poll_seconds, log=log)
    rebuild_results(out)
    status = progress.update()
    if preempted:
        log("stopped by a signal; run the same command again to resume")
    return status

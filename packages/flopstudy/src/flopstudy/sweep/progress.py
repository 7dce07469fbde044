"""Progress of a whole sweep, read from its run directories: runs done / running / failed / left, FLOPs spent,
ETA. `SweepProgress.update()` prints one line whenever a count changes and rewrites ``status.json`` (the same, machine
readable, with every run's state)::

    sweep mini: 3/5 runs done, 0 running, 0 failed, 2 left | 1.4e+09 FLOPs spent | 1.6 min elapsed, ETA 1.1 min

A run is done when every stage it needs has its result (pre-training summary and each task's seeds), failed when
it or one of its tasks recorded an error, running while a live executor holds its claim, else left. FLOPs spent
= per step x steps of every finished pre-training + every fine-tuning run done (grid and seeds). The ETA is the
wall time per run finished in this session times the runs left (None until one finishes).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .claims import claim_holder
from .expansion import Plan
from .job import pretrain_steps
from .rundir import RunDir, read_json, read_task_result, write_json_atomic

__all__ = ["SweepProgress", "SweepStatus", "run_state", "sweep_status"]


@dataclasses.dataclass(frozen=True)
class SweepStatus:
    """Counts of runs by state, FLOPs spent, seconds elapsed and the ETA (None: unknown)."""

    name: str
    done: int
    running: int
    failed: int
    left: int
    flops_spent: float
    elapsed_seconds: float
    eta_seconds: float | None
    runs: dict[str, str]

    @property
    def total(self) -> int:
        return self.done + self.running + self.failed + self.left

    def line(self) -> str:
        eta = "" if self.eta_seconds is None else f", ETA {self.eta_seconds / 60:.1f} min"
        return (f"sweep {self.name}: {self.done}/{self.total} runs done, {self.running} running, {self.failed} "
                f"failed, {self.left} left | {self.flops_spent:.3g} FLOPs spent | "
                f"{self.elapsed_seconds / 60:.1f} min elapsed{eta}")


def run_state(rd: RunDir, plan: Plan) -> tuple[str, float]:
    """(state, FLOPs spent) of one run (module docstring)."""
    spent, complete, failed = 0.0, True, rd.failure() is not None
    run = rd.run
    if not run.is_scratch:
        flops = read_json(rd.flops_file)
        summary = read_json(rd.summary_file)
        if summary is not None and flops and flops.get("flops_per_step"):
            spent += float(flops["flops_per_step"]) * (pretrain_steps(run, flops) or 0)
        complete = summary is not None
    for planned in plan.tasks[run.run_id]:
        result, broken = read_task_result(rd, planned.spec)
        if result is not None:
            spent += float(result.flops_spent or 0.0)
        complete = complete and result is not None and set(planned.seeds) <= set(result.scores)
        failed = failed or broken is not None or rd.task_failure(planned.spec) is not None
    if failed:
        return "failed", spent
    if complete:
        return "done", spent
    return ("running" if claim_holder(rd.claim_file) is not None else "left"), spent


def sweep_status(out: str | Path, plan: Plan, *, name: str, started: float, finished_here: int) -> SweepStatus:
    """The status of every run of ``plan`` in ``out``; ``finished_here``: runs this session finished (ETA)."""
    states, spent = {}, 0.0
    for run in plan.runs:
        states[run.run_id], flops = run_state(RunDir(out, run), plan)
        spent += flops
    counts = {s: sum(1 for v in states.values() if v == s) for s in ("done", "running", "failed", "left")}
    elapsed = time.time() - started
    remaining = counts["left"] + counts["running"]
    eta = elapsed / finished_here * remaining if finished_here else None
    return SweepStatus(name, counts["done"], counts["running"], counts["failed"], counts["left"], spent, elapsed,
                       eta, states)


class SweepProgress:
    """Prints a line when the counts change and keeps ``out/status.json`` current."""

    def __init__(self, out: str | Path, plan: Plan, *, name: str, log: Callable[[str], None] = print) -> None:
        self.out, self.plan, self.name, self.log = Path(out), plan, name, log
        self.started, self.finished_here = time.time(), 0
        self._last: tuple[int, ...] | None = None

    def set_plan(self, plan: Plan) -> None:
        self.plan, self._last = plan, None

    def update(self, *, finished: int = 0) -> SweepStatus:
        self.finished_here += finished
        status = sweep_status(self.out, self.plan, name=self.name, started=self.started,
                              finished_here=self.finished_here)
        counts = (status.done, status.running, status.failed, status.left)
        if counts != self._last:
            self.log(status.line())
            self._last = counts
        record: dict[str, Any] = dataclasses.asdict(status) | {"total": status.total, "line": status.line(),
                                                              "updated_at": time.time()}
        write_json_atomic(self.out / "status.json", record)
        return status

"""The on-disk layout of a sweep and its run directories; every file is written atomically (temp + rename).

::

    OUT/sweep.json                     the sweep's settings and plan (runs, tasks, seeds): what the table lists
    OUT/status.json                    progress: runs done / running / failed / left, FLOPs spent, ETA
    OUT/results.csv, results.jsonl     the results table, rebuilt from the run directories
    OUT/.jax_cache/                    JAX's persistent compilation cache (unless $FLOPWISE_JAX_CACHE is set)
    OUT/runs/<run_id>/spec.json        the run's `RunSpec` (written first; another spec here is an error)
                     /claim.json       while an executor works on the run: host, pid, start time
                     /flops.json       FLOPs per step: stage 1 for a FLOP budget (abstract compile), written
                                       after stage 2 for a step budget (from summary.json, the step that ran)
                     /pretrain/        stage 2: the trainer's run (summary.json when finished; checkpoints)
                     /tasks/<task_id>/ stage 3, per task: spec.json, the task's own files, result.json
                     /failed.json      why the run failed (stage, error, traceback); tasks/<id>/failed.json
                                       likewise for one task

A stage is done when its result file exists: ``flops.json``, ``pretrain/summary.json``, the task's result.
"""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any

from runloop import write_json_atomic

from ..specs.runs import RunSpec, TaskSpec, spec_hash
from ..stages.registry import get_task

__all__ = ["RunDir", "read_json", "read_task_result", "write_json_atomic"]

SPEC_FILE = "spec.json"
FAILED_FILE = "failed.json"


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when the file does not exist; ValueError naming a broken file."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: unreadable ({type(err).__name__}: {err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_task_result(rd: RunDir, task: TaskSpec) -> tuple[Any, str | None]:
    """``(TaskResult or None, None)``, or ``(None, error text)`` when the task's result file is broken."""
    try:
        return get_task(task.kind).read(rd.task_dir(task)), None
    except ValueError as err:
        return None, f"ValueError: {err}"


def _ensure_spec(directory: Path, spec: dict[str, Any]) -> None:
    path = directory / SPEC_FILE
    existing = read_json(path)
    if existing is None:
        directory.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, spec)
    elif spec_hash(existing) != spec_hash(spec):
        differ = sorted(k for k in set(existing) | set(spec) if existing.get(k) != spec.get(k))
        raise ValueError(f"{directory} was written by another spec (differs in {differ}): a hash collision or an "
                         "edited spec.json; move that directory away or use another --out")


def failure_record(stage: str, error: BaseException) -> dict[str, Any]:
    return {"stage": stage, "error": f"{type(error).__name__}: {error}",
            "traceback": "".join(traceback.format_exception(error)), "host": socket.gethostname(),
            "pid": os.getpid(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


class RunDir:
    """Paths and files of one run directory under a sweep's ``out``."""

    def __init__(self, out: str | Path, run: RunSpec) -> None:
        self.run = run
        self.path = Path(out) / "runs" / run.run_id
        self.flops_file = self.path / "flops.json"
        self.pretrain_dir = self.path / "pretrain"
        self.summary_file = self.pretrain_dir / "summary.json"
        self.claim_file = self.path / "claim.json"
        self.failed_file = self.path / FAILED_FILE

    def task_dir(self, task: TaskSpec) -> Path:
        return self.path / "tasks" / task.task_id

    def ensure(self, tasks: list[TaskSpec] | tuple[TaskSpec, ...] = ()) -> None:
        """Creates the run (and task) directories with their spec.json, or checks the specs already there."""
        _ensure_spec(self.path, self.run.to_json())
        for task in tasks:
            _ensure_spec(self.task_dir(task), task.to_json())

    def failure(self) -> dict[str, Any] | None:
        return read_json(self.failed_file)

    def task_failure(self, task: TaskSpec) -> dict[str, Any] | None:
        return read_json(self.task_dir(task) / FAILED_FILE)

    def record_failure(self, stage: str, error: BaseException, task: TaskSpec | None = None) -> None:
        path = self.failed_file if task is None else self.task_dir(task) / FAILED_FILE
        write_json_atomic(path, failure_record(stage, error))

    def clear_failures(self, tasks: list[TaskSpec] | tuple[TaskSpec, ...]) -> None:
        """Removes the failure records (a retry), keeping the last one as ``failed.previous.json``."""
        for path in (self.failed_file, *(self.task_dir(t) / FAILED_FILE for t in tasks)):
            if path.exists():
                os.replace(path, path.with_name("failed.previous.json"))

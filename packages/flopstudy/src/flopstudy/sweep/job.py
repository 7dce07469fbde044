"""One run of a sweep, stage by stage: FLOPs per step -> pre-train -> fine-tune each task (its seeds).

The "flops" stage (an abstract compile of the step) runs only for a budget in FLOPs, which must become steps
before training; with a budget in steps, ``flops.json`` is written after pre-training from the FLOPs the engine
measured on the compiled step it ran (``summary.json``), so each run compiles its step once.

`execute(job, stages)` is what every executor calls, in this process, a worker process or a SLURM job. It
claims the run (`claims`), skips each stage whose result file exists, lets an interrupted stage resume from its
checkpoints, and records a failing stage in ``failed.json`` (or a failing task in its task folder) instead of
raising, so the other runs go on. A run that failed before stays failed (with its error) unless the job says
``retry_failed`` (a broken task result, e.g. a NaN score, is then set aside and the task run again). The claim
is released however the job ends. The second stage of a chain (``run.init``) trains
once its first stage (another run of the sweep) has finished: until then the job reports "busy" and is revisited;
a failed first stage fails it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import runloop
from sslmethods.pretrain.flop_budget import steps_for_flops

from ..specs.runs import RunSpec
from ..specs.settings import PretrainSettings
from ..specs.task_protocol import Preempted
from ..stages.registry import get_task
from .claims import release, try_claim
from .expansion import PlannedTask
from .rundir import RunDir, read_json, write_json_atomic

__all__ = ["Job", "JobOutcome", "execute", "pretrain_steps"]


@dataclasses.dataclass(frozen=True)
class Job:
    """Everything a worker needs for one run (picklable, no reference to the driver)."""

    out: str
    run: RunSpec
    tasks: tuple[PlannedTask, ...]
    pretrain: PretrainSettings
    data_dir: str | None
    cache_dir: str | None
    retry_failed: bool = False


@dataclasses.dataclass(frozen=True)
class JobOutcome:
    """``status``: "done", "failed" (see the run's failure files), "busy" (another live executor holds the run)
    or "preempted" (a stage was stopped by a signal after checkpointing; the next sweep resumes it);
    ``executed``: the stages this call ran, e.g. ``("flops", "pretrain", "task:<task_id>")``."""

    run_id: str
    status: str
    executed: tuple[str, ...] = ()
    error: str | None = None


def pretrain_steps(run: RunSpec, flops: dict | None) -> int | None:
    """Steps of a run: its budget in steps, or its FLOP budget / measured FLOPs per step
    (`sslmethods.pretrain.flop_budget.steps_for_flops`, the rule ``flopwise-pretrain --flops`` uses; None before
    the FLOPs are measured)."""
    if run.is_scratch:
        return 0
    if run.budget_unit == "steps":
        return int(run.budget)
    if flops is None or not flops.get("flops_per_step"):
        return None
    return steps_for_flops(float(run.budget), float(flops["flops_per_step"]))


def execute(job: Job, stages: object, *, log: Callable[[str], None] = print) -> JobOutcome:
    """Runs the stages of ``job.run`` that are not done (module docstring). ``stages``: a
    `flopstudy.stages.Stages`. Raises only KeyboardInterrupt and SystemExit."""
    if job.cache_dir:  # runs of one sweep share compiled steps (runloop.enable_compilation_cache)
        runloop.enable_compilation_cache(job.cache_dir)
    rd = RunDir(job.out, job.run)
    claim = try_claim(rd.claim_file, log=log)
    if claim is None:
        return JobOutcome(job.run.run_id, "busy")
    specs = [t.spec for t in job.tasks]
    executed: list[str] = []
    try:
        rd.ensure(specs)
        if job.retry_failed:
            rd.clear_failures(specs)
        elif (failure := rd.failure()) is not None:
            return JobOutcome(job.run.run_id, "failed", error=failure.get("error"))
        stage = "flops"
        try:
            if not job.run.is_scratch:
                flops = read_json(rd.flops_file)
                if flops is None and job.run.budget_unit != "steps":  # FLOPs -> steps before training
                    flops = stages.measure_flops(job.run, data_dir=job.data_dir)
                    write_json_atomic(rd.flops_file, flops)
                    executed.append(stage)
                stage = "pretrain"
                if not rd.summary_file.exists():
                    init = {}
                    if job.run.init is not None:
                        first = RunDir(job.out, job.run.init)
                        if (failure := first.failure()) is not None:
                            raise RuntimeError(f"its first stage {job.run.init.run_id} failed: {failure.get('error')}")
                        if not first.summary_file.exists():
                            log(f"{job.run.run_id}: waiting for its first stage {job.run.init.run_id}")
                            return JobOutcome(job.run.run_id, "busy", tuple(executed))
                        init = {"init_from": first.pretrain_dir}
                    summary = stages.pretrain(job.run, steps=pretrain_steps(job.run, flops), out_dir=rd.pretrain_dir,
                                              data_dir=job.data_dir, settings=job.pretrain, **init)
                    executed.append(stage)
                    if summary.get("status") != "completed" or not rd.summary_file.exists():
                        raise Preempted(f"pre-training of {job.run.describe()} stopped at step "
                                        f"{summary.get('steps')}; run the sweep again to resume it")
                if flops is None:  # a step budget: no separate compile, the engine measured the step it ran
                    write_json_atomic(rd.flops_file, stages.recorded_flops(job.run, out_dir=rd.pretrain_dir,
                                                                           data_dir=job.data_dir))
        except (Preempted, KeyboardInterrupt, SystemExit):
            raise
        except Exception as error:  # recorded, and the sweep goes on with the other runs
            rd.record_failure(stage, error)
            log(f"{job.run.run_id}: {stage} failed: {type(error).__name__}: {error}")
            return JobOutcome(job.run.run_id, "failed", tuple(executed), f"{type(error).__name__}: {error}")
        failed = [_task(job, rd, planned, stages, executed, log) for planned in job.tasks]
        errors = [e for e in failed if e is not None]
        return JobOutcome(job.run.run_id, "failed" if errors else "done", tuple(executed),
                          errors[0] if errors else None)
    except Preempted as stop:
        log(f"{job.run.run_id}: {stop}")
        return JobOutcome(job.run.run_id, "preempted", tuple(executed), str(stop))
    finally:
        release(claim)


def _task(job: Job, rd: RunDir, planned: PlannedTask, stages: object, executed: list[str],
          log: Callable[[str], None]) -> str | None:
    """Fine-tunes one task's missing seeds; returns the error text if it failed (now or before)."""
    if (failure := rd.task_failure(planned.spec)) is not None:
        return str(failure.get("error"))
    directory = rd.task_dir(planned.spec)
    encoder = "scratch" if job.run.is_scratch else os.fspath(rd.pretrain_dir)
    task = get_task(planned.spec.kind)
    try:
        try:
            result = task.read(directory)
        except ValueError as broken:  # a retry runs the task again (its finished runs are reused)
            if not job.retry_failed:
                raise
            result, moved = None, task.set_aside_result(directory)
            log(f"{job.run.run_id}: {planned.spec.label}: {broken}; set aside as {moved}, running it again")
        if result is not None and set(planned.seeds) <= set(result.scores):
            return None
        stages.finetune(planned.spec, planned.settings, encoder=encoder, model=job.run.backbone, out_dir=directory,
                        seeds=planned.seeds, data_dir=job.data_dir)
        executed.append(f"task:{planned.spec.task_id}")
    except (Preempted, KeyboardInterrupt, SystemExit):
        raise
    except Exception as error:
        rd.record_failure(f"task:{planned.spec.task_id}", error, task=planned.spec)
        log(f"{job.run.run_id}: {planned.spec.label} failed: {type(error).__name__}: {error}")
        return f"{type(error).__name__}: {error}"
    return None

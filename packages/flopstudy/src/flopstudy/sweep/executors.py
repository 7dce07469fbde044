"""Where a sweep's jobs run: in this process, in N local worker processes, or as SLURM jobs through submitit.

Every executor calls the same `job.execute` (claim, skip finished stages, resume, record failures), so the
semantics do not depend on where a run happens; it reports each `JobOutcome` to ``on_outcome`` as it arrives.

- `LocalExecutor(workers=0)`: one run after the other in this process (runs share JAX's in-memory caches);
  ``workers=N``: N spawned worker processes (fresh interpreters: JAX and forking do not mix); SIGTERM/SIGINT to
  the driver is passed on to them.
- `SubmititExecutor(folder, cluster="slurm", parameters={...})`: one submitit job per run (DINO's and MAE's
  launcher); ``cluster="local"`` is submitit's local executor (subprocesses on this machine), which the tests use.
  A job that dies without reporting (timeout, node failure) has its claim removed by the driver and is recorded
  as failed with submitit's error.
"""

from __future__ import annotations

import abc
import concurrent.futures
import multiprocessing
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import flopcli
import flopmeter
import submitit

from .claims import release_dead_job
from .job import Job, JobOutcome, execute
from .rundir import RunDir

__all__ = ["AbstractExecutor", "LocalExecutor", "SubmititExecutor", "WorkerLost"]


class WorkerLost(flopcli.Interrupted):
    """A local worker process died without reporting (kill -9, out of memory): the sweep stops like an
    interrupted command (status 3, one ``interrupted:`` line); running it again resumes."""

OnOutcome = Callable[[JobOutcome], None]


class AbstractExecutor(abc.ABC):
    @abc.abstractmethod
    def run(self, jobs: Sequence[Job], stages: object, on_outcome: OnOutcome, *,
            log: Callable[[str], None]) -> list[JobOutcome]:
        """Runs ``jobs``; returns their outcomes (also passed to ``on_outcome`` as they come)."""


class LocalExecutor(AbstractExecutor):
    """``workers=0``: in this process; ``workers=N``: N spawned worker processes."""

    def __init__(self, workers: int = 0) -> None:
        if workers < 0:
            raise ValueError(f"--workers {workers}: expected >= 0 (0 runs in this process)")
        self.workers = workers

    def run(self, jobs: Sequence[Job], stages: object, on_outcome: OnOutcome, *,
            log: Callable[[str], None]) -> list[JobOutcome]:
        outcomes = []
        if self.workers == 0:
            for job in jobs:
                outcomes.append(execute(job, stages, log=log))
                on_outcome(outcomes[-1])
                if outcomes[-1].status == "preempted":
                    break  # a signal stopped the run: stop here, the next sweep resumes
            return outcomes
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=context,
                                                    initializer=flopmeter.reuse_host_memory) as pool:
            futures = [pool.submit(execute, job, stages) for job in jobs]
            try:
                for future in concurrent.futures.as_completed(futures):
                    try:
                        outcomes.append(future.result())
                    except concurrent.futures.process.BrokenProcessPool:
                        raise WorkerLost("a worker process died (killed, out of memory?); what the runs saved is "
                                         "kept and a stale claim is taken over: run the same command again to "
                                         "resume") from None
                    on_outcome(outcomes[-1])
                    if outcomes[-1].status == "preempted":
                        break
            except KeyboardInterrupt:
                # A signal sent to the driver alone (kill PID) would leave the workers running their runs to the
                # end while the pool waits for them: pass it on, so each checkpoints (or, between stages, stops)
                # and the next sweep resumes or takes over its run.
                for worker in multiprocessing.active_children():
                    worker.terminate()
                raise
            finally:
                for future in futures:
                    future.cancel()
        return outcomes


class SubmititExecutor(AbstractExecutor):
    """One submitit job per run in ``folder`` (logs, pickles); ``parameters`` go to ``update_parameters``."""

    def __init__(self, folder: str | Path, *, cluster: str | None = "slurm",
                 parameters: Mapping[str, Any] | None = None, poll_seconds: float = 10.0) -> None:
        if cluster == "slurm" and shutil.which("sbatch") is None:
            raise ValueError("--executor slurm: no sbatch on PATH; run the sweep on a SLURM login node, or use the "
                             "local executor")
        self.executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        self.executor.update_parameters(**dict(parameters or {}))
        self.poll_seconds = poll_seconds

    def run(self, jobs: Sequence[Job], stages: object, on_outcome: OnOutcome, *,
            log: Callable[[str], None]) -> list[JobOutcome]:
        submitted = [(job, self.executor.submit(execute, job, stages)) for job in jobs]
        log(f"submitted {len(submitted)} job(s): {', '.join(str(s.job_id) for _, s in submitted[:5])}"
            f"{' ...' if len(submitted) > 5 else ''}")
        outcomes, pending = [], list(submitted)
        try:
            while pending:
                still = []
                for job, handle in pending:
                    if not handle.done():
                        still.append((job, handle))
                        continue
                    outcomes.append(self._outcome(job, handle, log))
                    on_outcome(outcomes[-1])
                pending = still
                if pending:
                    time.sleep(self.poll_seconds)
        except BaseException:
            for _, handle in pending:
                handle.cancel(check=False)
            raise
        return outcomes

    @staticmethod
    def _outcome(job: Job, handle: Any, log: Callable[[str], None]) -> JobOutcome:
        try:
            return handle.result()
        except Exception as error:  # the job died outside `execute`'s own error handling
            rd = RunDir(job.out, job.run)
            release_dead_job(rd.claim_file, str(handle.job_id))
            rd.record_failure("job", error)
            log(f"{job.run.run_id}: job {handle.job_id} failed: {type(error).__name__}: {error}")
            return JobOutcome(job.run.run_id, "failed", error=f"{type(error).__name__}: {error}")

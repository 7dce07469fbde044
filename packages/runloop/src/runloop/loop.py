"""The training loop every run goes through (pre-training, segmentation, detection): big_vision's sections
(setup, data, state, step, checkpoint, evals, loop) as small functions over a caller's `TrainTask`.

The caller brings what to train::

    task = TrainTask(init=lambda: make_state(key), step=my_step, prepare_batch=tokenise, evaluate=probe)
    with open_run(out_dir, config, resume=resume) as run:
        result = train(task, data_iterator, LoopConfig(steps=1000, batch_size=256), run)

and the engine (1) builds the state sharded (``jit(init, out_shardings)``) or restores the newest readable
checkpoint (model, optimizer, data position, loss history) into the same shardings; (2) compiles the step once
and reads its FLOPs from that executable; (3) keeps metrics on device, syncing with the host only at the log,
eval and checkpoint cadences, and reads the next batch and puts it on the devices while the current step runs
(one batch ahead; a checkpoint records the data position before that batch); (4) guards against non-finite
steps (`runloop.nonfinite`); (5) checkpoints every
``checkpoint_every`` steps, on SIGTERM/SIGINT (or when ``stop(step)`` says so) and at the end; (6) runs the
caller's evaluation at ``eval_every`` and at the end, and scores the caller's held-out batches (`HeldOut`) there
with the compiled step itself (no second program to compile); (7) returns a `LoopResult`. It writes
``metrics.jsonl`` and ``checkpoints/`` in the run directory; the caller writes its own records.

``data`` yields host batches (dicts of numpy arrays, this process's share of the global batch) and has grain's
``get_state()`` / ``set_state(state)``. ``prepare_batch`` runs on each host batch and must return numeric arrays.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import flopmeter
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from .atomic_files import write_json_atomic
from .cadence import due
from .checkpoints import Checkpointer
from .loop_config import LoopConfig
from .metrics_log import MetricsLog
from .nonfinite import GoodCheckpoint, NonFiniteError, NonFiniteGuard
from .progress import Co2Model, Progress
from .run_directory import NONFINITE_FILE, RunDirectory
from .sharding import check_batch_size, make_mesh, put_batch, state_shardings
from .step_program import CompiledStep, StepFn, abstract_state, compile_step, init_sharded
from .stop_signal import StopSignal

__all__ = ["HeldOut", "LoopResult", "TrainTask", "train"]

RECENT_LOSSES = 10  # per-step losses kept in checkpoints: a resumed run still reports the final loss


@dataclasses.dataclass(frozen=True)
class HeldOut:
    """Fixed batches the engine scores at each evaluation with the compiled training step, whose metrics (the
    loss, computed before the update) are then those of data never trained on. For each batch the engine copies
    the state, applies ``prepare_state`` (e.g. a fixed PRNG key and step counter, so every evaluation and every
    run draws the same augmentations), runs one step on the copy and throws the updated copy away; the metrics
    ``keep`` accepts are averaged over the batches and recorded as ``heldout_<name>`` (with
    ``heldout_examples``). Costs one training step per batch and, while it runs, one more copy of the state."""

    batches: tuple[Mapping[str, Any], ...]
    prepare_state: Callable[[Any], Any]
    keep: Callable[[str], bool] = lambda name: True

    def __post_init__(self) -> None:
        if not self.batches:
            raise ValueError("HeldOut needs at least one batch")


@dataclasses.dataclass(frozen=True)
class TrainTask:
    """What to train. ``init(*init_args) -> state`` builds the initial state (traced under jit; put loaded
    weights in ``init_args`` so they are passed in, not compiled in as constants); ``step(state, batch,
    *step_args) -> (state, metrics)`` is pure (see `runloop.step_program`); ``step_args``: arrays (pytrees of
    them, the same in every process) the step reads as data, e.g. a schedule's length, so that runs differing
    only in them share one compiled program; ``prepare_batch(host_batch) -> arrays`` runs on the
    host before each batch goes to the devices (held-out batches too); ``evaluate(state, step) -> {name: value}``
    is the eval hook; ``heldout`` the batches scored with the step at each evaluation (`HeldOut`)."""

    init: Callable[..., Any]
    step: StepFn
    init_args: tuple[Any, ...] = ()
    step_args: tuple[Any, ...] = ()
    prepare_batch: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    evaluate: Callable[[Any, int], Mapping[str, Any]] | None = None
    heldout: HeldOut | None = None

    @property
    def evaluates(self) -> bool:
        """Whether the engine evaluates at all (an eval hook or held-out batches)."""
        return self.evaluate is not None or self.heldout is not None


@dataclasses.dataclass(frozen=True)
class LoopResult:
    """How a run ended (``status``: ``"completed"`` or ``"preempted"``), its final ``state`` and ``step``, the
    last step's metrics, the last losses, every eval record, skipped steps, the step's `flopmeter.Cost`, how this
    process got the step program (``compile_seconds``; ``step_source``: ``"compiled"`` or ``"cache"``, read from
    the persistent compilation cache) and this run's time/energy accounting (``wall_seconds`` includes earlier
    processes of the same run)."""

    status: str
    state: Any
    step: int
    final_metrics: dict[str, float | None]
    recent_losses: tuple[float, ...]
    evals: tuple[dict[str, Any], ...]
    skipped_steps: int
    cost: flopmeter.Cost | None
    compile_seconds: float
    devices: int
    wall_seconds: float
    images_per_second: float | None
    energy_kwh: float | None
    kg_co2e: float | None
    watts_per_device: float | None
    step_source: str = "compiled"

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    @property
    def flops_per_step(self) -> float | None:
        return None if self.cost is None else float(self.cost.flops)

    @property
    def total_flops(self) -> float | None:
        return None if self.cost is None else float(self.cost.flops) * self.step

    @property
    def final_loss(self) -> float | None:
        """Mean of the last (up to 10) applied steps' losses; None before any step."""
        return float(np.mean(self.recent_losses)) if self.recent_losses else None


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run_name(run: RunDirectory) -> str:
    """The run folder with its parent (a sweep's runs are all named ``pretrain`` or by task, inside their run)."""
    return "/".join(run.path.parts[-2:])


def _check_iterator(data: Any) -> None:
    missing = [name for name in ("__next__", "get_state", "set_state") if not callable(getattr(data, name, None))]
    if missing:
        raise TypeError(f"data={type(data).__name__} lacks {missing}; expected an iterator with get_state() and "
                        "set_state() (e.g. a grain DatasetIterator: iter(grain.MapDataset...))")


@dataclasses.dataclass
class _Book:
    """The loop's host-side bookkeeping. ``step``: updates applied (exact after a sync, optimistic between)."""

    step: int
    synced_step: int
    recent: list[float]
    skipped: int
    evals: list[dict[str, Any]]
    reference_loss: float | None
    last: dict[str, float] = dataclasses.field(default_factory=dict)
    pending: list[dict[str, jax.Array]] = dataclasses.field(default_factory=list)
    logged_at: int = -1
    evaluated_at: int = -1

    @classmethod
    def resume(cls, step: int, meta: Mapping[str, Any]) -> _Book:
        # "last_metrics": the last step's metrics, so a run resumed at its final step reports them again
        # (checkpoints written before it was recorded give {}); "evals" include the checkpoint step's own
        return cls(step, step, list(meta.get("recent_losses", [])), int(meta.get("skipped_steps", 0)),
                   list(meta.get("evals", [])), meta.get("reference_loss"), dict(meta.get("last_metrics", {})),
                   evaluated_at=max((e["step"] for e in meta.get("evals", [])), default=-1))


class _Loop:
    """One process's run of a task (see the module docstring); each method is one section of the loop."""

    def __init__(self, task: TrainTask, data: Any, cfg: LoopConfig, run: RunDirectory, mesh: Mesh,
                 ckpt: Checkpointer, log: Callable[[str], None], stop: Callable[[int], bool] | None) -> None:
        self.task, self.data, self.cfg, self.run_dir, self.mesh, self.ckpt = task, data, cfg, run, mesh, ckpt
        self.log, self.stop = (log if run.primary else (lambda _: None)), stop
        self.guard = NonFiniteGuard(skip=cfg.on_nonfinite == "skip", max_consecutive=cfg.max_consecutive_skips,
                                    names=cfg.option_names)
        self.co2 = Co2Model.resolve(hardware=cfg.hardware, watts=cfg.watts, region=cfg.region,
                                    devices=mesh.devices.size)
        started_at = time.perf_counter()
        abstract = abstract_state(task.init, *task.init_args)
        self.shardings = state_shardings(abstract, mesh, cfg.param_sharding)
        self.state, self.book, previous_seconds = self._initial_state(abstract)
        # (data position before the batch, the batch on the devices): read one step ahead
        self.ahead: tuple[Any, dict[str, jax.Array]] | None = self._fetch()
        self.program: CompiledStep = compile_step(
            task.step, self.state, self.ahead[1], mesh=mesh, state_shardings=self.shardings,
            skip_nonfinite=cfg.on_nonfinite == "skip", measure_flops=cfg.measure_flops, args=task.step_args)
        self.log(f"{_run_name(run)}: {self.program.describe()}")  # one compile per distinct program
        self.progress = Progress(total_steps=cfg.steps, batch_size=cfg.batch_size, start_step=self.book.step,
                                 flops_per_step=None if self.program.cost is None else self.program.cost.flops,
                                 co2=self.co2, previous_seconds=previous_seconds, started_at=started_at)
        self.metrics = MetricsLog(run.metrics, resume_step=self.book.step, tensorboard=cfg.tensorboard,
                                  enabled=run.primary)

    # ------------------------------------------------------------------------------------------ state + data
    def _initial_state(self, abstract: Any) -> tuple[Any, _Book, float]:
        restored = None
        if self.run_dir.resumed:
            restored = self.ckpt.restore(abstract, shardings=self.shardings, step=self.cfg.resume_from)
        if restored is None:
            state = init_sharded(self.task.init, self.task.init_args, abstract, self.shardings)
            return state, _Book.resume(0, {}), 0.0
        if restored.step > self.cfg.steps:  # open_run(loop=...) refuses this before config.json is rewritten
            names = self.cfg.option_names
            raise ValueError(f"{names.steps} {self.cfg.steps}: {self.run_dir.path} has already trained "
                             f"{restored.step} steps; a resumed run continues the same run (pass {names.steps} "
                             f"{restored.step} or more)")
        if self.cfg.resume_from is not None and (dropped := self.ckpt.discard_after(restored.step)):
            self.log(f"resuming from step {restored.step}: deleted the newer checkpoints {dropped}")
        self.data.set_state(restored.data_state)
        self.log(f"resumed {self.run_dir.path} at step {restored.step}/{self.cfg.steps}")
        meta = restored.metadata
        return restored.state, _Book.resume(restored.step, meta), float(meta.get("wall_seconds", 0.0))

    def _fetch(self) -> tuple[Any, dict[str, jax.Array]]:
        """The data position, then the next batch put on the devices (an asynchronous transfer)."""
        return self.data.get_state(), self._next_batch()

    def _next_batch(self) -> dict[str, jax.Array]:
        try:
            batch = next(self.data)
        except StopIteration:
            raise ValueError(f"the data iterator ran out after {self.book.step} of {self.cfg.steps} steps; use a "
                             "repeating pipeline (num_epochs=None) or fewer steps") from None
        if self.task.prepare_batch is not None:
            batch = self.task.prepare_batch(batch)
        local = self.cfg.batch_size // jax.process_count()
        sizes = {name: np.shape(x)[0] if np.ndim(x) else None for name, x in batch.items()}
        if any(size != local for size in sizes.values()):
            raise ValueError(f"the data iterator yields batches of sizes {sizes}; expected {local} per process "
                             f"(batch_size / {jax.process_count()} processes)")
        return put_batch(batch, self.mesh)

    # -------------------------------------------------------------------------------------------------- loop
    def run(self) -> str:
        """Steps until ``cfg.steps`` updates are applied or a stop is requested; returns the status."""
        with StopSignal() as signal:
            while True:
                if self.book.step >= self.cfg.steps:
                    self._sync()
                    if self.book.step >= self.cfg.steps:
                        self._complete()
                        return "completed"
                self._one_step()
                stopping = signal.requested or (self.stop is not None and self.stop(self.book.step))
                self._at_intervals(stopping)
                if stopping and self.book.step < self.cfg.steps:
                    self._save()
                    self.log(f"{self.run_dir.path.name}: stopped at step {self.book.step}; continue with "
                             f"{self.cfg.option_names.resume}")
                    return "preempted"

    def _one_step(self) -> None:
        (_, batch), self.ahead = (self.ahead if self.ahead is not None else self._fetch()), None
        self.state, metrics = self.program(self.state, batch)  # dispatched: runs while the host goes on
        self.book.step += 1
        self.book.pending.append(metrics)
        if self.book.step < self.cfg.steps:  # the next batch is read and sent while this step runs
            self.ahead = self._fetch()
        if not self.progress.timing:  # throughput is measured from the end of this process's first step
            jax.block_until_ready(metrics)
            self.progress.mark_compiled(self.book.step)

    def _at_intervals(self, stopping: bool) -> None:
        cfg, step = self.cfg, self.book.step
        log_due = due(step, cfg.log_every, total=cfg.steps)
        eval_due = self.task.evaluates and due(step, cfg.eval_every)
        # in skip mode, sync before more steps could be skipped in a row than the cap allows
        cap_due = self.guard.skip and len(self.book.pending) + self.guard.consecutive >= cfg.max_consecutive_skips
        if not (log_due or eval_due or cap_due or stopping or due(step, cfg.checkpoint_every)):
            return
        self._sync()
        if log_due or stopping:
            self._write_log()
        if eval_due:  # before the checkpoint, which then holds this eval: a run resumed from it keeps it
            self._evaluate()
        if due(self.book.step, cfg.checkpoint_every):
            self._save()

    def _complete(self) -> None:
        if self.book.logged_at != self.book.step and self.book.last:
            self._write_log()
        if self.task.evaluates:
            self._evaluate()
        self._save()

    # ------------------------------------------------------------------------------- sync, log, save, eval
    def _sync(self) -> None:
        """Reads the queued step metrics (one host sync) and passes them through the NaN guard."""
        if not self.book.pending:
            return
        fetched = jax.device_get(self.book.pending)
        self.book.pending.clear()
        applied = self.book.synced_step
        for raw in fetched:
            metrics = {name: float(value) for name, value in raw.items()}
            self.book.last = metrics
            if not self.guard.check(applied + 1, metrics, self._last_good):
                self.book.skipped += 1
                continue
            applied += 1
            self.book.recent = (self.book.recent + [metrics["loss"]])[-RECENT_LOSSES:]
            if self.book.reference_loss is None:
                self.book.reference_loss = metrics["loss"]
        self.book.step = self.book.synced_step = applied

    def _last_good(self) -> GoodCheckpoint | None:
        step = self.ckpt.last_good()
        return None if step is None else GoodCheckpoint(step, self.ckpt.path_of(step),
                                                        self.ckpt.metadata(step).get("loss"))

    def _write_log(self) -> None:
        step = self.book.step
        timing = self.progress.record(step)
        self.metrics.write({"step": step, **self.book.last, **timing, "skipped_steps": self.book.skipped})
        self.book.logged_at = step
        if self.cfg.print_progress:
            self.log(f"{self.run_dir.path.name}: {self.progress.line(step, self.book.last.get('loss'), timing)}")

    def _save(self) -> None:
        loss = self.book.recent[-1] if self.book.recent else None
        reference = self.book.reference_loss
        good = loss is not None and math.isfinite(loss) and abs(loss) <= self.cfg.loss_band * max(
            1.0, abs(reference if reference is not None else loss))
        # the position before a batch read ahead: a resumed run reads that batch again
        data_state = self.ahead[0] if self.ahead is not None else self.data.get_state()
        self.ckpt.save(self.book.step, self.state, data_state=data_state, metadata={
            "wall_seconds": self.progress.seconds, "loss": loss, "good": good, "reference_loss": reference,
            "recent_losses": self.book.recent, "skipped_steps": self.book.skipped, "evals": self.book.evals,
            "last_metrics": self.book.last})

    def _evaluate(self) -> None:
        step = self.book.step
        if self.book.evaluated_at == step:
            return
        record = {"step": step}
        if self.task.heldout is not None:
            record |= self._heldout(self.task.heldout)
        if self.task.evaluate is not None:
            record |= dict(self.task.evaluate(self.state, step))
        self.book.evals.append(record)
        self.book.evaluated_at = step
        self.metrics.write(record)
        scalars = [f"{k} {v:.4f}" for k, v in record.items() if k != "step" and isinstance(v, float)]
        if scalars:
            self.log(f"{self.run_dir.path.name}: eval at step {step}: {', '.join(scalars)}")

    def _heldout(self, heldout: HeldOut) -> dict[str, float]:
        """`HeldOut`'s metrics: one step of the compiled program per batch, each on a fresh copy of the state."""
        totals: dict[str, float] = {}
        examples = 0
        for host in heldout.batches:
            batch = self.task.prepare_batch(host) if self.task.prepare_batch is not None else host
            examples += int(np.shape(next(iter(batch.values())))[0]) * jax.process_count()
            dynamic, static = eqx.partition(heldout.prepare_state(self.state), eqx.is_array)
            # a copy in the step's own layout: the program donates (consumes) its state
            dynamic = jax.tree.map(lambda x, s: jax.device_put(jnp.copy(x), s), dynamic, self.shardings)
            _, metrics = self.program(eqx.combine(dynamic, static), put_batch(batch, self.mesh))
            for name, value in jax.device_get(metrics).items():
                if heldout.keep(name):
                    totals[name] = totals.get(name, 0.0) + float(value)
        return {**{f"heldout_{k}": v / len(heldout.batches) for k, v in totals.items()},
                "heldout_examples": float(examples)}

    def result(self, status: str) -> LoopResult:
        seconds, step = self.progress.seconds, self.book.step
        return LoopResult(
            status=status, state=self.state, step=step, final_metrics=dict(self.book.last),
            recent_losses=tuple(self.book.recent), evals=tuple(self.book.evals), skipped_steps=self.book.skipped,
            cost=self.program.cost, compile_seconds=self.program.compile_seconds, devices=self.mesh.devices.size,
            wall_seconds=seconds, images_per_second=self.progress.images_per_second(step),
            energy_kwh=self.co2.kwh(seconds), kg_co2e=self.co2.kg_co2e(seconds), watts_per_device=self.co2.watts,
            step_source=self.program.source)


def train(task: TrainTask, data: Any, cfg: LoopConfig, run: RunDirectory, *, mesh: Mesh | None = None,
          stop: Callable[[int], bool] | None = None, log: Callable[[str], None] = _stderr) -> LoopResult:
    """Runs (or resumes, when ``run.resumed``) ``task`` to ``cfg.steps`` in the open ``run`` (see the module
    docstring). ``mesh``: default all devices on one ``"data"`` axis. ``stop(step)`` returning True stops like
    SIGTERM (checkpoint, ``status="preempted"``). Raises NonFiniteError from the NaN guard, after writing
    ``nonfinite.json`` (step, error) in the run directory: `runloop.open_run`'s ``after_nonfinite``."""
    _check_iterator(data)
    if cfg.resume_from is not None and not run.resumed:
        raise ValueError(f"resume_from={cfg.resume_from} needs a resumed run ({cfg.option_names.resume})")
    mesh = make_mesh() if mesh is None else mesh
    check_batch_size(cfg.batch_size, mesh)
    with Checkpointer(run.checkpoints, keep=cfg.keep_checkpoints) as ckpt:
        loop = _Loop(task, data, cfg, run, mesh, ckpt, log, stop)
        try:
            status = loop.run()
        except NonFiniteError as error:  # recorded: a resume may then change the fields the caller allows
            if run.primary:
                write_json_atomic(run.path / NONFINITE_FILE, {"step": loop.book.step, "error": str(error)})
            raise
        finally:
            loop.metrics.close()
        return loop.result(status)

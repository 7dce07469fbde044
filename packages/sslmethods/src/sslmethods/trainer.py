"""The training loop, in big_vision's order of sections as small functions: setup, data, model + optimizer, step,
checkpoint, evals, loop.

``train(method, optim_cfg, data, cfg)`` runs (or resumes) a run in ``cfg.out_dir``::

    out_dir/config.json        everything that defines the run (written at the start)
    out_dir/metrics.jsonl      one record per log interval: loss, lr, grad/param norm, images/s, FLOPs, kgCO2e
    out_dir/checkpoints/<step> orbax checkpoints (state + data iterator state), the last ``keep_checkpoints``
    out_dir/encoder.eqx/.json  the final encoder (``sslmethods.export.load_encoder`` rebuilds a ViT)
    out_dir/summary.json       method, model, dataset, steps, batch, flops_per_step, total_flops, wall time, CO2

``data`` is an iterator of host batches (dicts of numpy arrays, this process's share of the global batch) with
grain's ``get_state()`` / ``set_state(state)``; its state is checkpointed with the model so a resumed run sees the
same batches. SIGTERM/SIGINT checkpoint the current step and return with ``status="preempted"``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np
import optax

from .checkpoint import Checkpointer, NonFiniteError, StopSignal
from .export import export_encoder
from .knn import extract_features, knn_accuracy
from .method import AbstractMethod
from .optim import OptimConfig, learning_rate_schedule, make_optimizer
from .progress import Co2Model, Progress
from .run_files import MetricsLog, write_json_atomic
from .sharding import batch_sharding, check_batch_size, make_mesh, put_batch, shard_state, state_shardings
from .step import make_step_fn, make_train_step
from .train_state import TrainState, abstract_train_state, decay_mask, init_train_state


@runtime_checkable
class DataIterator(Protocol):
    """What the loop needs from a data pipeline (grain's ``DatasetIterator`` has it)."""

    def __next__(self) -> dict[str, np.ndarray]: ...

    def get_state(self) -> Any: ...

    def set_state(self, state: Any) -> None: ...


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to run (not what to train). ``batch_size`` is global; ``eval_every=0`` runs the kNN monitor only at
    the end; ``on_nonfinite="skip"`` drops non-finite updates instead of stopping; ``param_sharding="fsdp"``
    splits parameters and optimizer state over the devices; ``hardware``/``watts``/``region`` feed the CO2
    estimate (``sslmethods.progress``)."""

    out_dir: str
    steps: int
    batch_size: int
    seed: int = 0
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 10
    eval_every: int = 0
    knn_k: int = 20
    on_nonfinite: str = "raise"  # "raise" | "skip"
    param_sharding: str = "replicate"  # "replicate" | "fsdp"
    measure_flops: bool = True
    tensorboard: bool = False
    hardware: str | None = None
    watts: float | None = None
    region: str = "gcp:europe-west1"
    resume: bool = True
    print_progress: bool = True

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "keep_checkpoints", "log_every", "knn_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name}={value!r}; expected a positive integer")
        if self.eval_every < 0:
            raise ValueError(f"TrainConfig.eval_every={self.eval_every!r}; expected >= 0 (0: only at the end)")
        if self.on_nonfinite not in ("raise", "skip"):
            raise ValueError(f"TrainConfig.on_nonfinite={self.on_nonfinite!r}; expected 'raise' or 'skip'")
        if self.param_sharding not in ("replicate", "fsdp"):
            raise ValueError(f"TrainConfig.param_sharding={self.param_sharding!r}; expected 'replicate' or 'fsdp'")


@dataclasses.dataclass(frozen=True)
class KnnSplits:
    """Held-out data for the kNN monitor: a labelled memory bank and a labelled query split (images in [0, 1])."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int


# ----------------------------------------------------------------------------------------------------- setup
def setup_run_dir(cfg: TrainConfig, optim_cfg: OptimConfig, run_info: dict[str, Any]) -> Path:
    """Creates the run directory and writes ``config.json`` (kept as is when resuming an existing run)."""
    run_dir = Path(cfg.out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.json"
    if not (cfg.resume and config_path.exists()):
        write_json_atomic(config_path, {"run": run_info, "train": dataclasses.asdict(cfg),
                                        "optim": dataclasses.asdict(optim_cfg)})
    return run_dir


def _first_batch(data: Iterator[dict[str, np.ndarray]], local_batch: int) -> dict[str, np.ndarray]:
    batch = next(data)
    sizes = {name: np.shape(x)[0] for name, x in batch.items()}
    if any(size != local_batch for size in sizes.values()):
        raise ValueError(
            f"the data iterator yields batches of sizes {sizes}; expected {local_batch} per process "
            f"(batch_size / {jax.process_count()} processes)"
        )
    return batch


# ------------------------------------------------------------------------------------ model + optimizer + step
def build_optimizer(method: AbstractMethod, optim_cfg: OptimConfig, total_steps: int
                    ) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """The optimizer (weight decay masked by the method) and its learning-rate schedule (for logging)."""
    tx = make_optimizer(optim_cfg, total_steps, wd_mask=lambda p: decay_mask(method, p))
    return tx, learning_rate_schedule(optim_cfg, total_steps)


def measure_flops_per_step(method: AbstractMethod, tx: optax.GradientTransformation,
                           batch: dict[str, np.ndarray]) -> tuple[float | None, str]:
    """FLOPs of one whole step at the global batch, measured abstractly with flopmeter (None if not installed)."""
    if importlib.util.find_spec("flopmeter") is None:
        return None, "none (flopmeter not installed)"
    import flopmeter

    global_shapes = {k: jax.ShapeDtypeStruct((v.shape[0] * jax.process_count(), *v.shape[1:]), v.dtype)
                     for k, v in batch.items()}
    state, batch_struct = abstract_train_state(method, tx, global_shapes)
    cost = flopmeter.measure(make_step_fn(method, tx), state, batch_struct)
    return float(cost.flops), "flopmeter.measure (compiled step)"


# --------------------------------------------------------------------------------------------------- evals
def knn_monitor(method: AbstractMethod, state: TrainState, splits: KnnSplits, k: int) -> float:
    """Top-1 weighted cosine kNN accuracy of the encoder's pooled features on the held-out split."""
    encoder = method.encoder(state.trainable)
    bank = extract_features(encoder, splits.train_images)
    queries = extract_features(encoder, splits.test_images)
    return knn_accuracy(bank, splits.train_labels, queries, splits.test_labels, num_classes=splits.num_classes,
                        k=min(k, len(splits.train_labels)))


# ---------------------------------------------------------------------------------------------------- loop
def _flush(pending: list[tuple[int, dict[str, jax.Array]]], mode: str, last_good: str) -> tuple[dict, int]:
    """Reads the queued step metrics (one host sync); raises on a non-finite step in ``raise`` mode."""
    fetched = jax.device_get([m for _, m in pending])
    skipped = 0
    for (step, _), metrics in zip(pending, fetched, strict=True):
        if float(metrics["finite"]) < 1.0:
            if mode == "raise":
                raise NonFiniteError(
                    f"non-finite loss or gradient at step {step} (loss={float(metrics['loss'])}, "
                    f"grad_norm={float(metrics['grad_norm'])}); last good checkpoint: {last_good}. Lower the "
                    "learning rate or clip_norm, or set on_nonfinite='skip'"
                )
            skipped += 1
    pending.clear()
    return {k: float(v) for k, v in fetched[-1].items()}, skipped


def train(
    method: AbstractMethod,
    optim_cfg: OptimConfig,
    data: DataIterator,
    cfg: TrainConfig,
    *,
    knn: KnnSplits | None = None,
    run_info: dict[str, Any] | None = None,
    host_fn: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None,
) -> tuple[dict[str, Any], TrainState]:
    """Trains (or resumes) to ``cfg.steps``; returns ``(summary, final state)``. The summary is also written to
    ``summary.json`` when the run completes (``status="completed"``, not ``"preempted"``). Raises
    NonFiniteError on a non-finite step unless ``on_nonfinite="skip"``. ``host_fn`` maps each host batch before
    it goes to the devices (e.g. tokenise captions into ``caption_ids``/``caption_mask``; drop string fields)."""
    started_at = time.perf_counter()
    if not isinstance(data, DataIterator):
        raise TypeError(f"data={type(data).__name__}; expected an iterator with get_state() and set_state() "
                        "(e.g. a grain DatasetIterator: iter(grain.MapDataset...))")
    run_info = dict(run_info or {}) | {"method": (run_info or {}).get("method", method.name)}
    run_dir = setup_run_dir(cfg, optim_cfg, run_info)
    mesh = make_mesh()
    check_batch_size(cfg.batch_size, mesh)
    first = _first_batch(data, cfg.batch_size // jax.process_count())

    tx, lr_schedule = build_optimizer(method, optim_cfg, cfg.steps)
    state = init_train_state(method, tx, key=jax.random.key(cfg.seed))
    shardings = state_shardings(state, mesh, cfg.param_sharding)
    state = shard_state(state, shardings)
    ckpt = Checkpointer(run_dir / "checkpoints", every=cfg.checkpoint_every, keep=cfg.keep_checkpoints)
    previous_seconds, resumed = 0.0, None
    if cfg.resume and (restored := ckpt.restore(state)) is not None:
        state, data_state, meta = restored
        data.set_state(data_state)
        first = _first_batch(data, cfg.batch_size // jax.process_count())
        previous_seconds, resumed = float(meta.get("wall_seconds", 0.0)), int(state.step)
    step_fn = make_train_step(method, tx, lr_schedule=lr_schedule, skip_nonfinite=cfg.on_nonfinite == "skip",
                              state_sharding=shardings, batch_sharding=batch_sharding(mesh))
    device_batch = first if host_fn is None else host_fn(first)
    flops_per_step, flops_source = (measure_flops_per_step(method, tx, device_batch) if cfg.measure_flops
                                    else (None, "not measured"))
    co2 = Co2Model.resolve(hardware=cfg.hardware, watts=cfg.watts, region=cfg.region, devices=mesh.devices.size)
    host_step = int(state.step)
    progress = Progress(total_steps=cfg.steps, batch_size=cfg.batch_size, start_step=host_step,
                        flops_per_step=flops_per_step, co2=co2, previous_seconds=previous_seconds,
                        started_at=started_at)
    log = MetricsLog(run_dir / "metrics.jsonl", tensorboard=cfg.tensorboard, resume_step=resumed)

    def save(s: TrainState, data_state: Any) -> None:
        ckpt.save(s, data_state=data_state, metadata={"wall_seconds": progress.seconds})

    pending: list[tuple[int, dict[str, jax.Array]]] = []
    status, skipped, last, knn_history = "completed", 0, {}, []
    batch: dict[str, np.ndarray] | None = first
    with StopSignal() as stop:
        while True:
            if host_step >= cfg.steps:
                if pending:  # in skip mode a skipped step does not count: re-read the true step
                    last, n = _flush(pending, cfg.on_nonfinite, ckpt.path_of(ckpt.latest_step()))
                    skipped, host_step = skipped + n, int(state.step)
                if host_step >= cfg.steps:
                    break
            if batch is None:
                try:
                    batch = next(data)
                except StopIteration:
                    raise ValueError(f"the data iterator ran out after {host_step} of {cfg.steps} steps; use a "
                                     "repeating pipeline (num_epochs=None) or fewer steps") from None
            state, metrics = step_fn(state, put_batch(batch if host_fn is None else host_fn(batch), mesh))
            batch = None
            host_step += 1
            pending.append((host_step, metrics))
            if len(pending) == 1 and host_step == progress.start_step + 1:
                jax.block_until_ready(metrics)
                progress.mark_compiled(host_step)
            due_log = host_step % cfg.log_every == 0 or host_step == cfg.steps
            due_ckpt = host_step % cfg.checkpoint_every == 0
            due_eval = knn is not None and cfg.eval_every > 0 and host_step % cfg.eval_every == 0
            if due_log or due_ckpt or due_eval or stop.requested:
                last, n = _flush(pending, cfg.on_nonfinite, ckpt.path_of(ckpt.latest_step()))
                skipped, host_step = skipped + n, int(state.step)
                timing = progress.record(host_step)
                log.write({"step": host_step, **last, **timing, "skipped_steps": skipped})
                if cfg.print_progress:
                    print(progress.line(host_step, last["loss"], timing), file=sys.stderr, flush=True)
            if due_ckpt:
                if int(state.step) % cfg.checkpoint_every == 0:
                    save(state, data.get_state())
            if due_eval:
                acc = knn_monitor(method, state, knn, cfg.knn_k)
                knn_history.append({"step": host_step, "knn_top1": acc})
                log.write({"step": host_step, "knn_top1": acc})
            if stop.requested:
                save(state, data.get_state())
                status = "preempted"
                break
    if status == "completed":
        save(state, data.get_state())
        export_encoder(method.encoder(state.trainable), run_dir)
        if knn is not None and (not knn_history or knn_history[-1]["step"] != host_step):
            acc = knn_monitor(method, state, knn, cfg.knn_k)
            knn_history.append({"step": host_step, "knn_top1": acc})
            log.write({"step": host_step, "knn_top1": acc})
    log.close()
    ckpt.close()
    summary = _summary(run_info, cfg, mesh.devices.size, host_step, flops_per_step, flops_source, progress, co2,
                       last, skipped, knn_history, status)
    if status == "completed":
        write_json_atomic(run_dir / "summary.json", summary)
    return summary, state


def _summary(run_info: dict[str, Any], cfg: TrainConfig, devices: int, step: int, flops_per_step: float | None,
             flops_source: str, progress: Progress, co2: Co2Model, last: dict[str, float], skipped: int,
             knn_history: list[dict[str, Any]], status: str) -> dict[str, Any]:
    seconds = progress.seconds
    return {
        "method": run_info.get("method"),
        "model": run_info.get("model"),
        "dataset": run_info.get("dataset"),
        "status": status,
        "steps": step,
        "batch_size": cfg.batch_size,
        "devices": devices,
        "device_kind": jax.devices()[0].device_kind,
        "flops_per_step": flops_per_step,
        "flops_source": flops_source,
        "total_flops": None if flops_per_step is None else flops_per_step * step,
        "wall_seconds": seconds,
        "images_per_second": progress.images_per_second(step),
        "energy_kwh": co2.kwh(seconds),
        "kg_co2e": co2.kg_co2e(seconds),
        "co2_watts_per_device": co2.watts,
        "co2_region": cfg.region,
        "final_metrics": last,
        "skipped_steps": skipped,
        "knn": knn_history,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }

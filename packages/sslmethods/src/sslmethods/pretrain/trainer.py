"""Pre-training: a method's step composed with the engine (``runloop.train``).

``train_method(method, optim_cfg, data, cfg)`` runs (or, with ``cfg.resume``, continues) a run in ``cfg.out_dir``::

    out_dir/config.json        what defines the run: run info, seed and loop settings, optimizer
    out_dir/metrics.jsonl      one record per log interval: loss, lr, grad/param norm, images/s, FLOPs, kgCO2e
    out_dir/checkpoints/<step> orbax checkpoints (state + data iterator state + loss history)
    out_dir/encoder.eqx/.json  the final encoder (``vitcore.load_pretrained`` rebuilds the backbone)
    out_dir/summary.json       `runloop.PretrainSummary`: method, model, dataset, steps, FLOPs, wall time, CO2,
                               ``final_metrics`` (the last step's, and the held-out ``heldout_loss``, ...)

``data`` is an iterator of host batches (dicts of numpy arrays, this process's share of the global batch) with
grain's ``get_state()`` / ``set_state(state)``; ``method.prepare_batch`` runs on each one. SIGTERM/SIGINT
checkpoint the current step and return with ``status="preempted"``. A resumed run must be the same run: the
recorded config must match except for how it runs (cadences, sharding, reporting) and its length (``steps``:
the learning-rate and method schedules are then fitted to the new length from the resumed step on; fewer steps
than already trained is an error naming the steps option; after a stop by the NaN guard, also the learning
rate ``optim.lr``, listed under ``after_nonfinite`` in ``config.json``). A run resumed at its final step (finished, or
stopped after its last checkpoint) writes the same final metrics and kNN evaluations again.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax
import runloop
from runloop import TrainState

from ..methods.method import AbstractMethod
from .export import export_encoder
from .heldout import HeldOutSet, engine_heldout
from .init_from import check_stage_one, load_stage_one
from .knn import extract_features, knn_accuracy
from .optim import OptimConfig, learning_rate_schedule
from .run_length import run_length
from .step import make_run_step_fn
from .train_state import init_pretrain_state, method_optimizer

# The fields of config.json that are paths: recorded relative to the run directory (a sweep folder moved whole
# resumes; runloop.open_run).
PATH_FIELDS = ("train.init_from", "run.dataset_dir")
# What a resume may change after the NaN guard stopped the run: the learning rate (continue from the last good
# checkpoint, --resume-from, at a lower one); config.json lists each such change (runloop.open_run).
AFTER_NONFINITE = ("optim.lr",)
# What may differ between a run and its resumption (dotted paths into config.json).
MAY_CHANGE = (*(f"train.{name}" for name in runloop.LoopConfig.HOW_FIELDS), "train.steps", "train.knn_k",
              "run.method_repr")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Where and how to pre-train: ``out_dir``, the engine's ``loop`` settings (steps, global batch, cadences,
    NaN policy, sharding, CO2), the ``seed`` of every random draw, ``knn_k`` neighbours of the kNN monitor,
    ``resume`` (continue the run in ``out_dir``; an error when it holds none) and ``init_from``: a finished run
    whose encoder the run starts from (the second stage of MAE pre-pretraining; `sslmethods.pretrain.init_from`; the
    method must be built on that run's architecture, ``init_from.exported_encoder_config``)."""

    out_dir: str
    loop: runloop.LoopConfig
    seed: int = 0
    knn_k: int = 20
    resume: bool = False
    init_from: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r}; expected an integer >= 0")
        if isinstance(self.knn_k, bool) or not isinstance(self.knn_k, int) or self.knn_k < 1:
            raise ValueError(f"knn_k={self.knn_k!r}; expected a positive integer")
        if self.loop.resume_from is not None and not self.resume:
            names = self.loop.option_names
            raise ValueError(f"{names.resume_from.replace('STEP', str(self.loop.resume_from))} needs {names.resume}")


@dataclasses.dataclass(frozen=True)
class KnnSplits:
    """Held-out data for the kNN monitor: a labelled memory bank and a labelled query split (images in [0, 1])."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int


def build_optimizer(method: AbstractMethod, optim_cfg: OptimConfig, total_steps: int
                    ) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """The optimizer (weight decay and adaptive clipping masked by the method) and its learning-rate schedule
    (for logging)."""
    tx = method_optimizer(method, optim_cfg, total_steps)
    return tx, learning_rate_schedule(optim_cfg, total_steps)


def knn_monitor(method: AbstractMethod, state: TrainState, splits: KnnSplits, k: int) -> float:
    """Top-1 weighted cosine kNN accuracy of the encoder's pooled features on the held-out split."""
    encoder = method.encoder(state.model)
    bank = extract_features(encoder, splits.train_images)
    queries = extract_features(encoder, splits.test_images)
    return knn_accuracy(bank, splits.train_labels, queries, splits.test_labels, num_classes=splits.num_classes,
                        k=min(k, len(splits.train_labels)))


def _check_run_length(method: AbstractMethod, cfg: TrainConfig) -> None:
    """A method whose schedules read the run length as data must be built for this run's length: the step puts
    ``cfg.loop.steps`` in place of its ``total_steps`` (`step.make_run_step_fn`). ValueError otherwise."""
    if method.run_length_is_data and method.total_steps != cfg.loop.steps:
        raise ValueError(f"{type(method).__name__}(total_steps={method.total_steps}) for a run of {cfg.loop.steps} "
                         f"steps; build the method with total_steps={cfg.loop.steps} (its schedules are fitted to "
                         "the run)")


def pretrain_task(method: AbstractMethod, optim_cfg: OptimConfig, cfg: TrainConfig,
                  knn: KnnSplits | None = None, heldout: HeldOutSet | None = None) -> runloop.TrainTask:
    """The engine's task: the method's state and step, its host-side batch preparation, the held-out set scored
    with the step (`sslmethods.pretrain.heldout`) and the kNN monitor. The step takes the run's length as data
    (`step.make_run_step_fn`, `run_length`): the budgets of one method, backbone, batch and data shapes compile
    one program."""
    _check_run_length(method, cfg)
    tx = method_optimizer(method, optim_cfg, cfg.loop.steps)  # builds the optimizer state (any length's would)

    def knn_eval(state: TrainState, step: int) -> dict[str, float]:
        del step
        return {"knn_top1": knn_monitor(method, state, knn, cfg.knn_k)}

    def init(*encoder: Any) -> TrainState:  # the first stage's encoder comes in as an argument, not a constant
        return init_pretrain_state(method, tx, key=jax.random.key(cfg.seed), encoder=encoder[0] if encoder else None)

    init_args = () if cfg.init_from is None else (load_stage_one(cfg.init_from),)
    return runloop.TrainTask(init=init, init_args=init_args, step=make_run_step_fn(method, optim_cfg),
                             step_args=(run_length(optim_cfg, cfg.loop.steps),),
                             prepare_batch=method.prepare_batch, evaluate=None if knn is None else knn_eval,
                             heldout=None if heldout is None else engine_heldout(heldout))


def run_config(method: AbstractMethod, optim_cfg: OptimConfig, cfg: TrainConfig,
               run_info: dict[str, Any] | None) -> dict[str, Any]:
    """``config.json``: run info (method name by default), seed and loop settings, optimizer."""
    init = {} if cfg.init_from is None else {"init_from": str(Path(cfg.init_from).resolve())}
    return {"run": {"method": method.name, **(run_info or {})},
            "train": {"seed": cfg.seed, "knn_k": cfg.knn_k, **init, **cfg.loop.record()},
            "optim": _optim_record(optim_cfg)}


# OptimConfig fields added after runs were first recorded that only SGD reads: recorded only for SGD runs, so an
# earlier (Adam/AdamW) run directory still passes the same-run check on resume.
_SGD_ONLY = ("momentum", "nesterov")


def _optim_record(optim_cfg: OptimConfig) -> dict[str, Any]:
    record = dataclasses.asdict(optim_cfg)
    if optim_cfg.optimizer != "sgd":
        for name in _SGD_ONLY:
            del record[name]
    return record


def _final_heldout(result: runloop.LoopResult) -> dict[str, float]:
    """The held-out metrics of the evaluation at the run's last step ({} when there is none)."""
    last = result.evals[-1] if result.evals else {}
    if last.get("step") != result.step:
        return {}
    return {k: float(v) for k, v in last.items() if k.startswith("heldout_") and isinstance(v, int | float)}


def summarise(run: dict[str, Any], cfg: TrainConfig, result: runloop.LoopResult) -> runloop.PretrainSummary:
    """The typed summary of a (completed or preempted) run; ``final_metrics`` holds the last step's metrics
    (``loss``: that batch's training loss) and the final held-out evaluation (``heldout_loss``, ...)."""
    return runloop.PretrainSummary(
        method=run["method"], model=run.get("model"), dataset=run.get("dataset"), status=result.status,
        steps=result.step, batch_size=cfg.loop.batch_size, flops_per_step=result.flops_per_step,
        total_flops=result.total_flops,
        flops_source="not measured" if result.cost is None else "runloop: the compiled step (flopmeter)",
        devices=result.devices, device_kind=jax.devices()[0].device_kind, wall_seconds=result.wall_seconds,
        images_per_second=result.images_per_second, energy_kwh=result.energy_kwh, kg_co2e=result.kg_co2e,
        co2_watts_per_device=result.watts_per_device, co2_region=cfg.loop.region,
        final_metrics=dict(result.final_metrics) | _final_heldout(result), skipped_steps=result.skipped_steps,
        knn=[{"step": e["step"], "knn_top1": e["knn_top1"]} for e in result.evals if "knn_top1" in e],
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def train_method(method: AbstractMethod, optim_cfg: OptimConfig, data: Any, cfg: TrainConfig, *,
          knn: KnnSplits | None = None, heldout: HeldOutSet | None = None, run_info: dict[str, Any] | None = None,
          log: Callable[[str], None] = _stderr) -> tuple[runloop.PretrainSummary, TrainState]:
    """Trains (or resumes) to ``cfg.loop.steps``; returns ``(summary, final state)``. ``knn``: the kNN monitor's
    splits; ``heldout``: the held-out set scored at each evaluation and at the end. The summary is also written
    to ``summary.json`` when the run completes (``status="completed"``, not ``"preempted"``). Raises
    ``runloop.NonFiniteError`` on a non-finite step unless ``on_nonfinite="skip"``."""
    mesh = runloop.make_mesh()
    runloop.check_batch_size(cfg.loop.batch_size, mesh)
    if cfg.init_from is not None:
        check_stage_one(cfg.init_from)  # before the run directory is created
    task = pretrain_task(method, optim_cfg, cfg, knn, heldout)
    config = run_config(method, optim_cfg, cfg, run_info)
    with runloop.open_run(cfg.out_dir, config, resume=cfg.resume, may_change=MAY_CHANGE,
                          primary=jax.process_index() == 0, resume_flag=cfg.loop.option_names.resume,
                          loop=cfg.loop, paths=PATH_FIELDS, after_nonfinite=AFTER_NONFINITE) as run:
        result = runloop.train(task, data, cfg.loop, run, mesh=mesh, log=log)
        summary = summarise(config["run"], cfg, result)
        if result.completed and run.primary:
            export_encoder(method.encoder(result.state.model), run.path)
            summary.write(run.path / "summary.json")
    return summary, result.state

"""The pre-training and FLOP-measurement stages' one adapter into sslmethods: building a run's method, measuring
its step, training it.

Calls ``sslmethods.pretrain.trainer.train`` in-process (not ``tools/pretrain.py`` in a subprocess): the runs of
one worker process share JAX's compilation caches and the persistent cache, and an exception reaches the sweep with its
type and message. Process isolation, where wanted, comes from the executor (``--workers N`` or SLURM jobs), not from
here. When the engine (``runloop``) or the Method protocol changes these calls, this module is the place.

Method names: a registered name (``sslmethods.METHODS``) or an import path ``package.module:ClassName`` of an
``AbstractMethod`` subclass taking ``backbone=`` and ``total_steps=`` like the built-ins, resolved by
``sslmethods.pretrain.recipes`` (a class outside the registry gets its field defaults and the fallback optimizer
preset).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import equinox as eqx
import flopmeter
import jax
import runloop
import vitcore
from sslmethods.costs import step_cost
from sslmethods.pretrain import overrides, recipes, step, train_state, trainer
from sslmethods.pretrain.data import PretrainData, pretrain_loader
from sslmethods.pretrain.heldout import heldout_set
from sslmethods.pretrain.init_from import exported_encoder_config

from .datasets import resolve_dataset

if TYPE_CHECKING:
    from ..specs.runs import RunSpec
    from ..specs.settings import PretrainSettings

__all__ = ["build_method", "measure_flops", "measure_step_abstract", "method_class", "pretrain", "recorded_flops",
           "run_overrides"]

def method_class(name: str) -> type:
    """The method class of a registered name or of ``package.module:ClassName``; ValueError naming ``name``."""
    return recipes.method_class(name)


def run_overrides(spec: RunSpec) -> Any:
    """The run's ``section.field=value`` overrides, typed (``sslmethods.pretrain.overrides.Overrides``)."""
    return overrides.parse_overrides(spec.overrides, method_class(spec.method))


def build_method(spec: RunSpec, *, total_steps: int, dataset_dir: Path | None) -> tuple[Any, Any]:
    """``(method, OptimConfig)`` of a run (no arrays are built). ``dataset_dir`` fills the dataset-dependent
    fields (class count, class names); None leaves the method's defaults (enough to check a configuration).
    A method outside the registry gets ``recipes.build_method``'s preset fallback. The second stage of a chain
    is built on the architecture its first stage exports (``init_from.exported_encoder_config``)."""
    cls, chosen = method_class(spec.method), run_overrides(spec)
    kwargs = chosen.build_kwargs()
    if spec.init is not None:
        first, _ = build_method(spec.init, total_steps=1, dataset_dir=dataset_dir)
        kwargs["backbone"] = exported_encoder_config(first)
    if spec.image_size is not None:
        kwargs["model_overrides"] = {"image_size": spec.image_size} | kwargs["model_overrides"]
    kwargs["method_overrides"] = recipes.dataset_overrides(cls, dataset_dir) | kwargs["method_overrides"]
    return recipes.build_method(cls, spec.backbone, preset=spec.preset, total_steps=total_steps, **kwargs)


def _loader(spec: RunSpec, method: Any, directory: Path, *, workers: int) -> Any:
    size = vitcore.image_hw(method.backbone.image_size)[0]
    return iter(pretrain_loader(PretrainData(str(directory), batch_size=spec.batch, image_size=size, seed=spec.seed,
                                             worker_count=workers)))


def measure_flops(spec: RunSpec, *, data_dir: str | None) -> dict[str, Any]:
    """FLOPs of one whole training step at the run's global batch, measured with ``flopmeter.measure`` on the
    compiled step (abstract inputs shaped like a real host batch of the dataset; nothing is trained)."""
    directory = resolve_dataset(spec.dataset, data_dir=data_dir)
    total = spec.budget if spec.budget_unit == "steps" else 1000  # the step program does not depend on it
    method, optim = build_method(spec, total_steps=int(total), dataset_dir=directory)
    batch = method.prepare_batch(next(_loader(spec, method, directory, workers=0)))
    shapes = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in batch.items()}
    tx, _ = trainer.build_optimizer(method, optim, int(total))
    state, batch_struct = train_state.abstract_train_state(method, tx, shapes)
    cost = flopmeter.measure(step.make_step_fn(method, tx), state, batch_struct)
    return {"flops_per_step": float(cost.flops), "flops_per_step_per_device": float(cost.flops_per_device),
            "measured_devices": int(cost.num_devices), "macs_per_step": float(cost.macs),
            "params": _encoder_params(method),
            "batch": spec.batch, "compile_seconds": float(cost.compile_seconds), "backend": cost.backend,
            "notes": list(cost.notes), "source": "flopmeter.measure (compiled step, abstract inputs)"}


def _encoder_params(method: Any) -> int:
    trainable, _ = eqx.filter_eval_shape(lambda key: method.init(key=key), jax.random.key(0))
    encoder = method.encoder(trainable)
    return sum(int(x.size) for x in jax.tree.leaves(encoder) if isinstance(x, jax.ShapeDtypeStruct | jax.Array))


def recorded_flops(spec: RunSpec, *, out_dir: Path, data_dir: str | None) -> dict[str, Any]:
    """The ``measure_flops`` record of a run whose pre-training finished, from the FLOPs per step the engine
    measured on the compiled step that trained (``out_dir/summary.json``; nothing is compiled). ValueError when
    the summary has no FLOPs."""
    summary = runloop.PretrainSummary.read(Path(out_dir) / "summary.json")
    if summary.flops_per_step is None:
        raise ValueError(f"{Path(out_dir) / 'summary.json'} has no flops_per_step (the step was not measured)")
    method, _ = build_method(spec, total_steps=summary.steps, dataset_dir=resolve_dataset(spec.dataset,
                                                                                          data_dir=data_dir))
    flops = float(summary.flops_per_step)
    return {"flops_per_step": flops, "flops_per_step_per_device": flops / summary.devices,
            "measured_devices": summary.devices, "macs_per_step": flops / 2.0, "params": _encoder_params(method),
            "batch": summary.batch_size, "device_kind": summary.device_kind, "notes": [],
            "source": f"summary.json ({summary.flops_source})"}


def measure_step_abstract(spec: RunSpec) -> dict[str, Any]:
    """The run's step measured without its dataset (``sslmethods.costs.step_cost`` on the method's ``batch_spec``:
    abstract inputs, nothing allocated or trained), for paper-scale configs on a laptop: ``flops_per_step``,
    ``macs_per_step``, the closed form ``analytic_flops_per_step``, trainable ``params``, ``compile_seconds``.
    Dataset-dependent fields keep the method's defaults (1000 classes; CLIP's captions are token ids anyway)."""
    total = spec.budget if spec.budget_unit == "steps" else 1000  # the step program does not depend on it
    method, optim = build_method(spec, total_steps=int(total), dataset_dir=None)
    return step_cost.step_cost(method, optim, spec.batch)


def pretrain(spec: RunSpec, *, steps: int, out_dir: Path, data_dir: str | None,
             settings: PretrainSettings, init_from: Path | None = None) -> dict[str, Any]:
    """Pre-trains (or resumes, when ``out_dir`` holds checkpoints) for ``steps`` steps; returns the trainer's
    summary (``status`` "completed", written to ``out_dir/summary.json``, or "preempted"). ``init_from``: the
    first stage's pre-training folder of a chain's second stage (its encoder is loaded first)."""
    if (spec.init is None) != (init_from is None):
        raise ValueError(f"{spec.describe()}: init_from={init_from!r}; a chain's second stage (and only it) starts "
                         "from its first stage's folder")
    directory = resolve_dataset(spec.dataset, data_dir=data_dir)
    method, optim = build_method(spec, total_steps=steps, dataset_dir=directory)
    size = method.backbone.image_size
    knn = None
    if spec.knn_bank > 0:
        knn = recipes.knn_splits(directory, image_size=size if isinstance(size, int) else size[0],
                                 bank_size=spec.knn_bank, query_size=spec.knn_query)
    heldout = heldout_set(directory, image_size=size if isinstance(size, int) else size[0], batch_size=spec.batch)
    loop = runloop.LoopConfig(
        steps=steps, batch_size=spec.batch, checkpoint_every=settings.checkpoint_every, log_every=settings.log_every,
        eval_every=settings.eval_every, print_progress=settings.print_progress, hardware=settings.hardware,
        watts=settings.watts)
    cfg = trainer.TrainConfig(out_dir=str(out_dir), loop=loop, seed=spec.seed, resume=runloop.holds_run(out_dir),
                              init_from=None if init_from is None else str(init_from))
    summary, _ = trainer.train(
        method, optim, _loader(spec, method, directory, workers=settings.workers), cfg, knn=knn,
        heldout=heldout,
        run_info={"method": spec.method, "model": spec.backbone, "dataset": spec.dataset, "preset": spec.preset,
                  "dataset_dir": str(directory), "method_repr": repr(method), "overrides": list(spec.overrides)})
    return summary.to_json()

"""The pre-training and FLOP-measurement stages' one adapter into sslmethods: a sweep's run's
`sslmethods.PretrainSpec`, then its ``build``, ``measure`` and ``train``.

A `RunSpec` holds its run's ``PretrainSpec`` (the identity, hashed into its run id); the sweep's `PretrainSettings`
(how runs execute) and the run's length in steps are put into it when it trains (`pretrain_spec`, a
``dataclasses.replace``): the same spec ``flopwise-pretrain`` parses, so a sweep's run and the command written to
its folder (``command.txt``) record the same ``config.json``. A FLOP budget is resolved by the sweep (its
``flops.json``, `flopstudy.sweep.job.pretrain_steps`), so a sweep's folder records its length as ``--steps``.
Training runs in-process (not ``flopwise-pretrain`` in a subprocess): the runs of one worker process share JAX's
compilation caches and the persistent cache, and an exception reaches the sweep with its type and message.
Process isolation, where wanted, comes from the executor (``--workers N`` or SLURM jobs), not from here.

Method names: a registered name (``sslmethods.METHODS``) or an import path ``package.module:ClassName`` of an
``AbstractMethod`` subclass taking ``backbone=`` and ``total_steps=`` like the built-ins, resolved by
``sslmethods.pretrain.recipes.method_class`` (a class outside the registry gets its field defaults and the
fallback optimizer preset).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import runloop
from sslmethods.costs import step_cost
from sslmethods.pretrain.init_from import exported_encoder_config
from sslmethods.pretrain.spec import PretrainSpec, encoder_params

from ..specs.settings import PretrainSettings
from .datasets import resolve_dataset

if TYPE_CHECKING:
    from ..specs.runs import RunSpec

__all__ = ["build_run", "measure_flops", "measure_step_abstract", "pretrain", "pretrain_spec", "recorded_flops"]


def pretrain_spec(spec: RunSpec, *, steps: int | None = None, settings: PretrainSettings | None = None,
                  init_from: Path | None = None) -> PretrainSpec:
    """The run's ``PretrainSpec`` trained for ``steps`` (default: its own length, a FLOP budget still unresolved)
    with ``settings`` (default: the sweep's defaults); ``init_from``: a chain's first stage's pre-training folder."""
    length = {} if steps is None else {"steps": steps, "flops": None}
    return dataclasses.replace(spec.pretrain, **length, init_from=None if init_from is None else str(init_from),
                               **dataclasses.asdict(settings or PretrainSettings()))


def _backbone(spec: RunSpec, dataset_dir: Path | None) -> Any:
    """The config a chain's second stage is built on: the encoder its first stage exports
    (``init_from.exported_encoder_config``, found from the first stage's spec: it need not have run yet)."""
    if spec.init is None:
        return None
    first, _ = spec.init.pretrain.build(dataset_dir)
    return exported_encoder_config(first)


def build_run(spec: RunSpec, *, total_steps: int, dataset_dir: Path | None) -> tuple[Any, Any]:
    """``(method, OptimConfig)`` of a run (no arrays are built). ``dataset_dir`` fills the dataset-dependent
    fields (class count, class names); None leaves the method's defaults (enough to check a configuration)."""
    return pretrain_spec(spec, steps=total_steps).build(dataset_dir, backbone=_backbone(spec, dataset_dir))


def measure_flops(spec: RunSpec, *, data_dir: str | None) -> dict[str, Any]:
    """FLOPs of one whole training step at the run's global batch (``PretrainSpec.measure``: the compiled step
    on abstract inputs shaped like a real host batch of the dataset; nothing is trained)."""
    directory = resolve_dataset(spec.dataset, data_dir=data_dir)
    return spec.pretrain.measure(directory, backbone=_backbone(spec, directory))


def recorded_flops(spec: RunSpec, *, out_dir: Path, data_dir: str | None) -> dict[str, Any]:
    """The ``measure_flops`` record of a run whose pre-training finished, from the FLOPs per step the engine
    measured on the compiled step that trained (``out_dir/summary.json``; nothing is compiled). ValueError when
    the summary has no FLOPs."""
    summary = runloop.PretrainSummary.read(Path(out_dir) / "summary.json")
    if summary.flops_per_step is None:
        raise ValueError(f"{Path(out_dir) / 'summary.json'} has no flops_per_step (the step was not measured)")
    method, _ = build_run(spec, total_steps=summary.steps, dataset_dir=resolve_dataset(spec.dataset,
                                                                                          data_dir=data_dir))
    flops = float(summary.flops_per_step)
    return {"flops_per_step": flops, "flops_per_step_per_device": flops / summary.devices,
            "measured_devices": summary.devices, "macs_per_step": flops / 2.0, "params": encoder_params(method),
            "batch": summary.batch_size, "device_kind": summary.device_kind, "notes": [],
            "source": f"summary.json ({summary.flops_source})"}


def measure_step_abstract(spec: RunSpec) -> dict[str, Any]:
    """The run's step measured without its dataset (``sslmethods.costs.step_cost`` on the method's ``batch_spec``:
    abstract inputs, nothing allocated or trained), for paper-scale configs on a laptop: ``flops_per_step``,
    ``macs_per_step``, the closed form ``analytic_flops_per_step``, trainable ``params``, ``compile_seconds``.
    Dataset-dependent fields keep the method's defaults (1000 classes; CLIP's captions are token ids anyway)."""
    method, optim = build_run(spec, total_steps=spec.pretrain.total_steps, dataset_dir=None)
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
    run = pretrain_spec(spec, steps=steps, settings=settings, init_from=init_from)
    built = run.build(directory, backbone=_backbone(spec, directory))
    summary = run.train(out_dir, dataset_dir=directory, resume=runloop.holds_run(out_dir), data_dir=data_dir,
                        method=built)
    return summary.to_json()

"""The sweep's stages as calls into the other packages, one adapter module per stage (`pretrain`: method
building, FLOP measurement and pre-training through sslmethods; `finetune` and `detection`: the segmentation
and detection tasks through segtransfer; `datasets`: flopdata). `Stages` bundles them for the orchestrator;
tests substitute fast fakes by subclassing it. `registry` lists the downstream task kinds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import flopdata

from .datasets import build_dataset, check_dataset, resolve_dataset

# `pretrain` under another name: the package's attribute `pretrain` stays the module
from .pretrain import build_run, measure_flops, recorded_flops
from .pretrain import pretrain as _pretrain
from .registry import get_task

if TYPE_CHECKING:
    from ..specs.runs import RunSpec, TaskSpec
    from ..specs.settings import PretrainSettings

__all__ = ["Stages"]


class Stages:
    """What each stage of a run does. Picklable (no state), so executors can send it to worker processes."""

    def check_run(self, run: RunSpec) -> None:
        """Builds the run's method and optimizer (no arrays): a bad value is an error before anything runs."""
        if not run.is_scratch:
            build_run(run, total_steps=run.pretrain.total_steps, dataset_dir=None)

    def check_dataset(self, name: str, *, data_dir: str | None) -> None:
        """ValueError unless ``name`` is built or embedded (builds nothing)."""
        check_dataset(name, data_dir=data_dir)

    def ensure_dataset(self, name: str, *, data_dir: str | None) -> None:
        """Builds an embedded set that is not built yet (once, before any run)."""
        resolve_dataset(name, data_dir=data_dir)

    def check_build(self, name: str, options: dict[str, Any], *, data_dir: str | None) -> None:
        """ValueError (naming the folder or file) unless ``name`` can be built with ``options``; writes nothing."""
        flopdata.check_build(name, data_dir=data_dir, **options)

    def build_dataset(self, name: str, options: dict[str, Any], *, data_dir: str | None) -> None:
        build_dataset(name, options, data_dir=data_dir)

    def measure_flops(self, run: RunSpec, *, data_dir: str | None) -> dict[str, Any]:
        return measure_flops(run, data_dir=data_dir)

    def recorded_flops(self, run: RunSpec, *, out_dir: Path, data_dir: str | None) -> dict[str, Any]:
        """``flops.json`` of a finished pre-training from its ``summary.json`` (budgets in steps)."""
        return recorded_flops(run, out_dir=out_dir, data_dir=data_dir)

    def pretrain(self, run: RunSpec, *, steps: int, out_dir: Path, data_dir: str | None,
                 settings: PretrainSettings, init_from: Path | None = None) -> dict[str, Any]:
        """``init_from``: the finished first stage's pre-training folder (given only for a chain's second
        stage)."""
        return _pretrain(run, steps=steps, out_dir=out_dir, data_dir=data_dir, settings=settings, init_from=init_from)

    def finetune(self, task: TaskSpec, settings: Any, *, encoder: str, model: str, out_dir: Path,
                 seeds: Sequence[int], data_dir: str | None) -> None:
        get_task(task.kind).run(settings, encoder=encoder, model=model, out_dir=out_dir, seeds=seeds,
                                data_dir=data_dir)

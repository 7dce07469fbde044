"""FLOPs per step of every distinct pre-training step of a sweep, measured abstractly (no data, no training).

A paper-scale config (NFNet-F0..F3 at 224, MAE ViT-L -> supervised ViT-L) is checked on a laptop before any
accelerator runs: each distinct step program of its plan (method, variant, backbone, batch, image size, overrides
and, for a chain's second stage, the first stage's architecture; budgets only change the schedule) is compiled on
``jax.ShapeDtypeStruct`` inputs and counted by flopmeter::

    rows = sweep_step_costs(load_sweep("configs/convnets.py:paper"))
    rows[0]["run"], rows[0]["flops_per_step"], rows[0]["analytic_flops_per_step"]
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from ..specs.runs import RunSpec
from ..stages.pretrain import measure_step_abstract
from .config import SweepSpec
from .expansion import expand

__all__ = ["sweep_step_costs"]


def _program(run: RunSpec) -> RunSpec:
    """The run with what does not change its step program (budget, seed, kNN sizes) made equal."""
    init = None if run.init is None else _program(run.init)
    pretrain = dataclasses.replace(run.pretrain, steps=1, flops=None, seed=0, knn_bank=0, knn_query=0)
    return dataclasses.replace(run, pretrain=pretrain, init=init)


def sweep_step_costs(sweep: SweepSpec, *, log: Callable[[str], None] = lambda _: None) -> list[dict[str, Any]]:
    """One row per distinct pre-training step of ``sweep``'s plan: ``run`` (its description), ``method``,
    ``variant``, ``backbone``, ``batch``, ``first_stage`` (a chain's first-stage method, else None),
    ``flops_per_step`` / ``macs_per_step`` (whole compiled program, 2 FLOPs per multiply-add),
    ``analytic_flops_per_step`` (the method's closed form), ``params`` and ``compile_seconds``."""
    rows, seen = [], set()
    for run in expand(sweep).runs:
        if run.is_scratch or (program := _program(run)).run_id in seen:
            continue
        seen.add(program.run_id)
        start = time.perf_counter()
        cost = measure_step_abstract(run)
        variant = f" ({run.variant})" if run.variant else ""
        rows.append({"run": f"{run.method}{variant} {run.backbone} on {run.dataset}, batch {run.batch}",
                     "method": run.method, "variant": run.variant, "backbone": run.backbone, "batch": run.batch,
                     "first_stage": None if run.init is None else run.init.method, **cost})
        log(f"{rows[-1]['run']}: {cost['flops_per_step']:.4g} FLOPs per step ({time.perf_counter() - start:.0f} s)")
    return rows

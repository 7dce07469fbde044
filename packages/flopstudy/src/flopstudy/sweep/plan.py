"""A sweep's grid expanded into runs and tasks, and the choice of points that get extra fine-tuning seeds.

`expand(sweep)` gives every `RunSpec` (datasets x backbones x methods x variants x budgets, then one scratch
baseline per backbone first) and every task; each run gets every task with the task's own seeds. With
``config.prepretrain``, the first-stage runs follow (one per dataset x backbone x first-stage budget, unless a plain
run of the sweep is that run already), then every chain: each run of a ``then`` method again, after each first
stage, its variant label ending in "after <method> <budget>". After the
first pass, `extra_seed_points` picks, per group of ``sweep.extra_seeds_by`` and task, the point with the best
median score over its seeds, plus every scratch baseline; those get ``sweep.extra_seeds`` seeds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from ..results import ResultRow
from .config import SweepSpec
from .spec import RunSpec, TaskSpec
from .tasks import get_task, task_spec

__all__ = ["Plan", "PlannedTask", "expand", "extra_seed_points", "variant_label"]


@dataclasses.dataclass(frozen=True)
class PlannedTask:
    """A task of a run: its identity, full settings and the seeds asked for."""

    spec: TaskSpec
    settings: Any
    seeds: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Plan:
    """Runs in execution order, each with its tasks (``tasks[run_id]``)."""

    runs: tuple[RunSpec, ...]
    tasks: dict[str, tuple[PlannedTask, ...]]

    def with_seeds(self, points: Iterable[tuple[str, str]], seeds: Sequence[int]) -> Plan:
        """This plan with ``seeds`` (at least) for the (run_id, task_id) ``points``."""
        chosen = set(points)
        tasks = {run_id: tuple(dataclasses.replace(t, seeds=tuple(sorted(set(t.seeds) | set(seeds))))
                               if (run_id, t.spec.task_id) in chosen else t for t in planned)
                 for run_id, planned in self.tasks.items()}
        return Plan(self.runs, tasks)


def variant_label(assignments: Sequence[str]) -> str:
    """The table's ``variant``: the variant's canonical overrides, ``method.`` left out ('' for none)."""
    return " ".join(a.removeprefix("method.") for a in assignments)


def _first_stages(sweep: SweepSpec, dataset: str, backbone: str) -> list[RunSpec]:
    """The first-stage runs of ``config.prepretrain`` on ``backbone`` and ``dataset``."""
    from sslmethods import overrides

    from ..stages.pretrain import method_class

    pp = sweep.prepretrain
    cls = method_class(pp.method)
    own = overrides.parse_overrides(pp.set, cls)
    merged = overrides.parse_overrides(sweep.per_backbone_set(backbone), cls).merged(own).assignments()
    return [RunSpec(method=pp.method, variant=variant_label(own.assignments()), backbone=backbone, dataset=dataset,
                    budget=budget, budget_unit=sweep.budget_unit,
                    batch=pp.batch or sweep.method_settings(pp.method).batch or sweep.batch, preset=sweep.preset,
                    image_size=sweep.image_size, seed=sweep.seed, overrides=merged, knn_bank=sweep.knn_bank,
                    knn_query=sweep.knn_query) for budget in pp.budgets]


def _unit(sweep: SweepSpec) -> str:
    return "steps" if sweep.budget_unit == "steps" else "FLOPs"


def expand(sweep: SweepSpec) -> Plan:
    """Every run and task of ``sweep`` (ValueError when two variants of a method give the same run)."""
    from sslmethods import overrides

    from ..stages.pretrain import method_class

    runs: list[RunSpec] = []
    chains: list[RunSpec] = []
    firsts: list[RunSpec] = []
    if sweep.scratch:
        runs += [RunSpec.scratch(backbone) for backbone in sweep.backbones]
    for dataset in sweep.datasets:
        for backbone in sweep.backbones:
            for method in sweep.methods:
                cls, ms = method_class(method), sweep.method_settings(method)
                common = overrides.parse_overrides(ms.set, cls).merged(
                    overrides.parse_overrides(sweep.per_backbone_set(backbone), cls))
                chained = cls.name in sweep.prepretrain.then and sweep.prepretrain.budgets
                stages = _first_stages(sweep, dataset, backbone) if chained else []
                firsts += stages
                for variant in ms.variants:
                    own = overrides.parse_overrides(variant.split(), cls)  # the variant wins over ``set``
                    label, merged = variant_label(own.assignments()), common.merged(own).assignments()
                    for budget in ms.budgets or sweep.budgets:
                        run = RunSpec(
                            method=method, variant=label, backbone=backbone, dataset=dataset,
                            budget=budget, budget_unit=sweep.budget_unit, batch=ms.batch or sweep.batch,
                            preset=sweep.preset, image_size=sweep.image_size, seed=sweep.seed, overrides=merged,
                            knn_bank=sweep.knn_bank, knn_query=sweep.knn_query)
                        runs.append(run)
                        chains += [dataclasses.replace(
                            run, init=first, variant=" ".join(filter(None, (
                                label, f"after {first.method} {first.budget:g} {_unit(sweep)}"))))
                            for first in stages]
    known = {run.run_id for run in runs}
    for first in firsts:  # a first stage that is a plain run of the sweep is that run
        if first.run_id not in known:
            runs.append(first)
            known.add(first.run_id)
    runs += chains
    seen: dict[str, RunSpec] = {}
    for run in runs:
        if run.run_id in seen:
            raise ValueError(f"two entries of the sweep give the same run {run.describe()} (variants "
                             f"{seen[run.run_id].variant!r} and {run.variant!r}); make them differ or drop one")
        seen[run.run_id] = run
    planned = tuple(PlannedTask(task_spec(kind, settings), settings, get_task(kind).seeds(settings))
                    for kind, settings in sweep.tasks.items())
    return Plan(tuple(runs), {run.run_id: planned for run in runs})


def extra_seed_points(sweep: SweepSpec, rows: Sequence[ResultRow]) -> list[tuple[str, str]]:
    """(run_id, task_id) of every scratch baseline and of the best point (highest median score over the seeds
    every point of its group has done, so a point that already got its extra seeds is compared with the others on
    the seeds they share and the choice does not move when the sweep is run again; fewer FLOPs on a tie) of each
    group of ``sweep.extra_seeds_by`` per task. Rows need the ``run_id`` and ``task_id`` extras the sweep's table
    writes."""
    import numpy as np

    scores: dict[tuple[str, str], dict[int, float]] = {}
    info: dict[tuple[str, str], ResultRow] = {}
    for row in rows:
        if row.done:
            key = (str(row.extras["run_id"]), str(row.extras["task_id"]))
            scores.setdefault(key, {})[int(row.seed)] = float(row.score)
            info[key] = row
    groups: dict[tuple, list[tuple[str, str]]] = {}
    points = []
    for key in scores:
        row = info[key]
        if row.is_scratch:
            points.append(key)
            continue
        groups.setdefault((row.task, *(getattr(row, f) for f in sweep.extra_seeds_by)), []).append(key)
    best: dict[tuple, tuple[float, float, tuple[str, str]]] = {}
    for group, keys in groups.items():
        shared = set.intersection(*(set(scores[key]) for key in keys)) or None
        for key in keys:
            values = [v for seed, v in scores[key].items() if shared is None or seed in shared]
            candidate = (float(np.median(values)), -(info[key].pretrain_flops or 0.0), key)
            if group not in best or candidate[:2] > best[group][:2]:
                best[group] = candidate
    return sorted(points + [c[2] for c in best.values()])

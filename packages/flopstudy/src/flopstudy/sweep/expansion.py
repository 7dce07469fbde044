"""A sweep's grid expanded into runs and tasks, and the choice of points that get confirm seeds.

`expand(sweep)` gives every `RunSpec` (datasets x backbones x methods x variants x budgets, then one scratch
baseline per backbone first) and every task; each run gets every task with the task's own seeds. With
``config.prepretrain``, the first-stage runs follow (one per dataset x backbone x first-stage budget, unless a plain
run of the sweep is that run already), then every chain: each run of a ``then`` method again, after each first
stage, its variant label ending in "after <method> <budget>". The task's own seeds are
every point's explore seeds. After the first pass, `confirm_points` picks, per group of ``sweep.confirm_by`` and
task, the point with the best median score over its explore seeds, plus every scratch baseline; those get
``sweep.confirm_seeds`` confirm seeds (`confirm_seed_numbers`: numbers after the explore seeds, so the seed that
chose a point never tests it; docs/statistics.md, "Verdicts"). With ``sweep.pretrain_seeds`` P > 1, each chosen
pre-trained point is also pre-trained P - 1 more times (`repeat_run`: the same run with pre-training seed
``seed + k``, so a new run id and folder; a chain repeats its first stage too), each repeat fine-tuned with the
confirm seeds only; the first pass's run stays pre-training seed 0 of the point (`Plan.pretrain_seed`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sslmethods.pretrain import overrides
from sslmethods.pretrain.recipes import method_class
from sslmethods.pretrain.spec import PretrainSpec

from ..results.rows import ResultRow
from ..specs.runs import RunSpec, TaskSpec
from ..stages.registry import get_task, task_spec
from .config import SweepSpec

__all__ = ["Plan", "PlannedTask", "confirm_points", "confirm_seed_numbers", "expand", "repeat_run", "variant_label"]


@dataclasses.dataclass(frozen=True)
class PlannedTask:
    """A task of a run: its identity, full settings, the seeds asked for and which of them are explore seeds (the
    task's own, which every point gets; the others are confirm seeds)."""

    spec: TaskSpec
    settings: Any
    seeds: tuple[int, ...]
    explore: tuple[int, ...]


def confirm_seed_numbers(explore: Sequence[int], count: int) -> tuple[int, ...]:
    """``count`` confirm seeds: the numbers after the largest explore seed (distinct from every explore seed, and
    the same for every point of a task, so a chosen point and scratch share them: common random numbers)."""
    start = max(explore, default=-1) + 1
    return tuple(range(start, start + count))


def repeat_run(run: RunSpec, k: int) -> RunSpec:
    """Pre-training seed ``k`` of ``run``'s point: the same run with its seed + ``k`` (and its first stage's, so a
    chain is pre-trained again from the start); ``k`` = 0 is ``run`` itself."""
    init = None if run.init is None else run.init.with_seed(run.init.seed + k)
    return dataclasses.replace(run.with_seed(run.seed + k), init=init)


@dataclasses.dataclass(frozen=True)
class Plan:
    """Runs in execution order, each with its tasks (``tasks[run_id]``); ``repeats``: run_id -> pre-training
    seed k >= 1 of the runs that repeat a chosen point's pre-training (every other run is its point's seed 0)."""

    runs: tuple[RunSpec, ...]
    tasks: dict[str, tuple[PlannedTask, ...]]
    repeats: dict[str, int] = dataclasses.field(default_factory=dict)

    def pretrain_seed(self, run_id: str) -> int:
        """Which pre-training of its point the run is: 0 for the first pass's runs, k for the k-th repeat."""
        return self.repeats.get(run_id, 0)

    def with_confirm(self, points: Iterable[tuple[str, str]], count: int, pretrain_seeds: int = 1) -> Plan:
        """This plan with ``count`` confirm seeds (`confirm_seed_numbers`) for the (run_id, task_id) ``points``,
        and with ``pretrain_seeds`` > 1, ``pretrain_seeds - 1`` repeats (`repeat_run`) of each pre-trained point's
        run, after every other run, each with that point's task and the confirm seeds only (their explore seeds
        recorded, so their rows are confirm rows). A repeated chain's first stage is a run without tasks (or the
        repeat of a chosen first stage, whose tasks it keeps)."""
        chosen = set(points)

        def more(t: PlannedTask) -> PlannedTask:
            seeds = set(t.seeds) | set(confirm_seed_numbers(t.explore, count))
            return dataclasses.replace(t, seeds=tuple(sorted(seeds)))

        tasks = {run_id: tuple(more(t) if (run_id, t.spec.task_id) in chosen else t for t in planned)
                 for run_id, planned in self.tasks.items()}
        runs, repeats = list(self.runs), dict(self.repeats)
        for run in self.runs:
            picked = [t for t in self.tasks[run.run_id] if (run.run_id, t.spec.task_id) in chosen]
            if run.is_scratch or run.run_id in self.repeats or not picked:
                continue
            confirm = [dataclasses.replace(t, seeds=confirm_seed_numbers(t.explore, count)) for t in picked]
            for k in range(1, pretrain_seeds):
                again = repeat_run(run, k)
                stages = [(again.init, [])] if again.init is not None else []  # a chain's first stage, no tasks
                for extra, own in [*stages, (again, confirm)]:
                    if extra.run_id not in tasks:
                        runs.append(extra)
                        tasks[extra.run_id], repeats[extra.run_id] = (), k
                    known = {t.spec.task_id for t in tasks[extra.run_id]}
                    tasks[extra.run_id] += tuple(t for t in own if t.spec.task_id not in known)
        return Plan(tuple(runs), tasks, repeats)


def variant_label(assignments: Sequence[str]) -> str:
    """The table's ``variant``: the variant's canonical overrides, ``method.`` left out ('' for none)."""
    return " ".join(a.removeprefix("method.") for a in assignments)


def _pretrain(sweep: SweepSpec, method: str, backbone: str, dataset: str, budget: float, batch: int,
              assignments: Sequence[str]) -> PretrainSpec:
    """The `PretrainSpec` of one run of ``sweep``: its budget as ``steps`` or as ``flops`` (``budget_unit``),
    the sweep-wide settings, the how-to-run fields at their defaults (the sweep's ``config.pretrain`` gives them
    when the run trains)."""
    length = {"steps": int(budget), "flops": None} if sweep.budget_unit == "steps" else {"steps": None,
                                                                                         "flops": float(budget)}
    return PretrainSpec(method=method, model=backbone, dataset=dataset, **length, batch=batch, preset=sweep.preset,
                        set=tuple(assignments), image_size=sweep.image_size, seed=sweep.seed,
                        knn_bank=sweep.knn_bank, knn_query=sweep.knn_query)


def _first_stages(sweep: SweepSpec, dataset: str, backbone: str) -> list[RunSpec]:
    """The first-stage runs of ``config.prepretrain`` on ``backbone`` and ``dataset``."""
    pp = sweep.prepretrain
    cls = method_class(pp.method)
    own = overrides.parse_overrides(pp.set, cls)
    merged = overrides.parse_overrides(sweep.per_backbone_set(backbone), cls).merged(own).assignments()
    batch = pp.batch or sweep.method_settings(pp.method).batch or sweep.batch
    return [RunSpec(_pretrain(sweep, pp.method, backbone, dataset, budget, batch, merged),
                    variant=variant_label(own.assignments())) for budget in pp.budgets]


def _unit(sweep: SweepSpec) -> str:
    return "steps" if sweep.budget_unit == "steps" else "FLOPs"


def expand(sweep: SweepSpec) -> Plan:
    """Every run and task of ``sweep`` (ValueError when two variants of a method give the same run)."""
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
                        run = RunSpec(_pretrain(sweep, method, backbone, dataset, budget, ms.batch or sweep.batch,
                                                merged), variant=label)
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
    planned = tuple(PlannedTask(task_spec(kind, settings), settings, seeds, seeds)
                    for kind, settings in sweep.tasks.items() for seeds in [get_task(kind).seeds(settings)])
    return Plan(tuple(runs), {run.run_id: planned for run in runs})


def confirm_points(rows: Sequence[ResultRow], by: Sequence[str]) -> list[tuple[str, str]]:
    """(run_id, task_id) of every scratch baseline and of the best point of each group of ``by`` (fields of
    `GROUP_FIELDS`) per task: the highest median score over its explore seeds only (fewer FLOPs on a tie), so
    confirm seeds never take part in the choice and it does not move when the sweep runs again. Rows need the
    ``run_id`` and ``task_id`` extras the sweep's table writes."""
    explore: dict[tuple[str, str], list[float]] = {}
    info: dict[tuple[str, str], ResultRow] = {}
    for row in rows:
        if row.done:
            key = (str(row.extras["run_id"]), str(row.extras["task_id"]))
            info[key] = row
            if row.role == "explore":
                explore.setdefault(key, []).append(float(row.score))
    points = sorted(key for key, row in info.items() if row.is_scratch)
    best: dict[tuple, tuple[float, float, tuple[str, str]]] = {}
    for key, scores in sorted(explore.items()):
        row = info[key]
        if row.is_scratch:
            continue
        group = (row.task, *(getattr(row, f) for f in by))
        candidate = (float(np.median(scores)), -(row.pretrain_flops or 0.0), key)
        if group not in best or candidate[:2] > best[group][:2]:
            best[group] = candidate
    return sorted(points + [c[2] for c in best.values()])

"""Accuracy-vs-FLOPs curves with seed spread, scratch baselines, and the FLOP axis convention.

A curve is every finished row of one (method, variant, backbone, pre-training dataset, task), grouped by
pre-training FLOPs; each point carries the median score over fine-tuning seeds (the study's final number) with
min/max and standard deviation. Rows with ``pretrain_flops == 0`` are from-scratch baselines, one per (backbone,
task). A finished row without a FLOP count is left out with a `Problem` that names it: never drawn at 0.

For fitting, a curve is also a list of `EncoderPoint`s: one per pre-trained encoder (rows sharing a ``run_dir`` and
``pretrain_seed``; rows without a ``run_dir`` share an encoder per budget and ``pretrain_seed``), scored by the mean
of its confirm seeds, or of its explore seeds when it has no confirm seed (``seed_role``; empty = explore), so a
seed used to pick a point never scores it.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from .loaded import Problem
from .rows import CurveKey, ResultRow

__all__ = ["FLOP_CONVENTIONS", "Baseline", "Curve", "CurvePoint", "EncoderPoint", "apply_flop_convention",
           "build_curves", "encoder_points", "size_ranks"]

FLOP_CONVENTIONS = ("whole-program", "per-device")


@dataclasses.dataclass(frozen=True)
class CurvePoint:
    """One pre-training budget of a curve: its FLOPs, steps and the score over seeds."""

    flops: float
    steps: int | None
    median: float
    low: float
    high: float
    std: float
    seeds: int


def _point(flops: float, rows: Sequence[ResultRow]) -> CurvePoint:
    scores = np.array([r.score for r in rows], np.float64)
    steps = {r.pretrain_steps for r in rows}
    return CurvePoint(flops=flops, steps=steps.pop() if len(steps) == 1 else None, median=float(np.median(scores)),
                      low=float(scores.min()), high=float(scores.max()), std=float(scores.std()),
                      seeds=len(rows))


@dataclasses.dataclass(frozen=True)
class EncoderPoint:
    """One pre-trained encoder of a curve: its FLOPs and the fine-tuning scores that stand for it (its confirm
    seeds, else its explore seeds); ``mean`` is the observation a fit uses, ``n`` its weight in seeds."""

    flops: float
    scores: tuple[float, ...]
    mean: float = dataclasses.field(init=False)
    n: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        # Plain fields, not properties: fits read them thousands of times.
        object.__setattr__(self, "mean", sum(self.scores) / len(self.scores))
        object.__setattr__(self, "n", len(self.scores))


def encoder_points(rows: Sequence[ResultRow]) -> list[EncoderPoint]:
    """The rows (one curve's finished rows with FLOPs) as encoders, by increasing FLOPs (module docstring)."""
    groups: dict[tuple[float, str, int], list[ResultRow]] = defaultdict(list)
    for row in rows:
        groups[(float(row.pretrain_flops), row.run_dir or "", row.pretrain_seed)].append(row)
    out = []
    for (flops, _, _), mine in sorted(groups.items()):
        confirm = [r.score for r in mine if r.seed_role == "confirm"]
        out.append(EncoderPoint(flops, tuple(confirm or [r.score for r in mine])))
    return out


@dataclasses.dataclass(frozen=True)
class Curve:
    """The points of one `CurveKey`, by increasing FLOPs, and the rows they came from."""

    key: CurveKey
    points: tuple[CurvePoint, ...]
    rows: tuple[ResultRow, ...]

    @property
    def flops_per_step(self) -> float | None:
        """Median FLOPs per pre-training step over the curve's rows, in the rows' convention (None if unknown)."""
        values = [v for v in (r.step_flops for r in self.rows) if v is not None]
        return float(np.median(values)) if values else None

    @property
    def encoders(self) -> list[EncoderPoint]:
        """One observation per pre-trained encoder (module docstring)."""
        return encoder_points(self.rows)


@dataclasses.dataclass(frozen=True)
class Baseline:
    """The from-scratch score of one backbone on one task (median over seeds)."""

    backbone: str
    task: str
    point: CurvePoint


def apply_flop_convention(rows: Sequence[ResultRow], convention: str) -> tuple[list[ResultRow], list[Problem]]:
    """Rows whose ``pretrain_flops`` and ``flops_per_step`` follow ``convention``: "whole-program" (as recorded)
    or "per-device" (divided by ``num_devices``; a pre-trained row without a device count gets unknown FLOPs and
    a Problem)."""
    if convention not in FLOP_CONVENTIONS:
        raise ValueError(f"convention={convention!r}: expected one of {FLOP_CONVENTIONS}")
    if convention == "whole-program":
        return list(rows), []
    out, problems = [], []
    for row in rows:
        if row.pretrain_flops and row.num_devices is None:
            problems.append(Problem(row.run_dir or "results", f"no num_devices for per-device FLOPs: "
                                    f"{row.describe()}"))
            out.append(dataclasses.replace(row, pretrain_flops=None))
        elif row.pretrain_flops:
            per_step = row.step_flops
            out.append(dataclasses.replace(row, pretrain_flops=row.pretrain_flops / row.num_devices,
                                           flops_per_step=None if per_step is None else per_step / row.num_devices))
        else:
            out.append(row)
    return out, problems


def build_curves(rows: Sequence[ResultRow]) -> tuple[list[Curve], list[Baseline], list[Problem]]:
    """Curves (sorted by key) and scratch baselines from the finished rows; problems for rows left out."""
    problems = []
    groups: dict[CurveKey, dict[float, list[ResultRow]]] = defaultdict(lambda: defaultdict(list))
    scratch: dict[tuple[str, str], list[ResultRow]] = defaultdict(list)
    for row in rows:
        if not row.done:
            continue
        if row.pretrain_flops is None:
            problems.append(Problem(row.run_dir or "results", f"left out of the FLOP axis: no FLOP count for "
                                    f"{row.describe()}"))
        elif row.is_scratch:
            scratch[(row.backbone, row.task)].append(row)
        elif row.pretrain_flops == 0:  # pre-trained at no cost: a broken count, not a from-scratch baseline
            problems.append(Problem(row.run_dir or "results", f"left out: pretrain_flops=0 for the pre-trained "
                                    f"method {row.method!r} ({row.describe()}); 0 FLOPs is for method 'scratch' "
                                    "only, so this row is not merged into the scratch baseline"))
        else:
            groups[row.curve_key][row.pretrain_flops].append(row)
    curves = [
        Curve(key=key, points=tuple(_point(f, by_flops[f]) for f in sorted(by_flops)),
              rows=tuple(r for f in sorted(by_flops) for r in by_flops[f]))
        for key, by_flops in sorted(groups.items())
    ]
    baselines = [Baseline(backbone=b, task=t, point=_point(0.0, rs)) for (b, t), rs in sorted(scratch.items())]
    return curves, baselines, problems


def size_ranks(rows: Sequence[ResultRow]) -> dict[str, int]:
    """Backbone name -> rank by size (0 = smallest): by median parameter count where known, else by median
    FLOPs per pre-training image (or per step), else by name; used to give each size its own line style."""
    def median(values: list[float]) -> float:
        return float(np.median(values)) if values else float("inf")

    keys = {}
    for backbone in sorted({r.backbone for r in rows}):
        mine = [r for r in rows if r.backbone == backbone]
        params = [float(r.params) for r in mine if r.params is not None]
        per_image = [r.step_flops / r.pretrain_batch for r in mine if r.step_flops and r.pretrain_batch]
        per_step = [r.step_flops for r in mine if r.step_flops]
        keys[backbone] = (median(params), median(per_image), median(per_step), backbone)
    return {b: i for i, b in enumerate(sorted(keys, key=keys.__getitem__))}

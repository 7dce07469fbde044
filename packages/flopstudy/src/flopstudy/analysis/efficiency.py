"""The efficiency front over every point of a panel, scratch included, and "FLOPs to reach X% of the best".

The front is `flopmeter.pareto_front` over the median scores of all curve points *and* the from-scratch baselines
at 0 FLOPs, so a pre-trained point at or below scratch is never on it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from flopmeter import pareto_front

from ..results.curves import Baseline, Curve
from ..results.rows import CurveKey

__all__ = ["FrontPoint", "Reach", "efficiency_front", "flops_to_reach"]


@dataclasses.dataclass(frozen=True)
class FrontPoint:
    """A non-dominated (FLOPs, median score) point: a curve's point, or a scratch baseline (``key`` None)."""

    flops: float
    score: float
    key: CurveKey | None
    backbone: str

    @property
    def label(self) -> str:
        return f"scratch {self.backbone}" if self.key is None else f"{self.key.label} {self.backbone}"


def efficiency_front(curves: Sequence[Curve], baselines: Sequence[Baseline]) -> list[FrontPoint]:
    """Front points by increasing FLOPs over ``curves``' points and ``baselines`` (one panel's)."""
    points = [FrontPoint(p.flops, p.median, c.key, c.key.backbone) for c in curves for p in c.points]
    points += [FrontPoint(0.0, b.point.median, None, b.backbone) for b in baselines]
    if not points:
        return []
    return [points[i] for i in pareto_front([p.flops for p in points], [p.score for p in points])]


@dataclasses.dataclass(frozen=True)
class Reach:
    """FLOPs at which a curve first reaches ``target`` % (log-linear between measured points). ``flops`` None:
    never reached; ``at_first_point``: already reached at the cheapest measured budget (so "at most")."""

    key: CurveKey
    target: float
    flops: float | None
    at_first_point: bool

    def describe(self) -> str:
        if self.flops is None:
            return "not reached"
        return f"<= {self.flops:.3g}" if self.at_first_point else f"{self.flops:.3g}"


def flops_to_reach(curve: Curve, target: float) -> Reach:
    """The FLOPs at which ``curve``'s median score first reaches ``target`` (%)."""
    points = curve.points
    if points and points[0].median >= target:
        return Reach(curve.key, target, points[0].flops, True)
    for before, after in zip(points, points[1:], strict=False):
        if before.median < target <= after.median:
            t = (target - before.median) / (after.median - before.median)
            log_flops = math.log(before.flops) + t * (math.log(after.flops) - math.log(before.flops))
            return Reach(curve.key, target, math.exp(log_flops), False)
    return Reach(curve.key, target, None, False)

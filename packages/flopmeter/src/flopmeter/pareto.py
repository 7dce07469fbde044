"""Cost-vs-score analysis: the Pareto front of (FLOPs, accuracy) points and the crossover between two curves.

The study's headline figures plot downstream accuracy against pre-training FLOPs and draw the efficiency
front: the points no other point beats on both axes (cheaper or equal *and* at least as accurate, better
on one).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt


def _check(costs: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[list[float], list[float]]:
    costs = [float(c) for c in np.ravel(np.asarray(costs, dtype=np.float64))]
    scores = [float(s) for s in np.ravel(np.asarray(scores, dtype=np.float64))]
    if len(costs) != len(scores):
        raise ValueError(f"len(costs)={len(costs)} != len(scores)={len(scores)}: expected one score per cost")
    bad = [i for i, (c, s) in enumerate(zip(costs, scores, strict=True))
           if not (math.isfinite(c) and math.isfinite(s))]
    if bad:
        raise ValueError(f"costs/scores at indices {bad} are not finite: expected finite numbers")
    return costs, scores


def pareto_front(costs: npt.ArrayLike, scores: npt.ArrayLike) -> list[int]:
    """Indices of the non-dominated points (lower cost, higher score are better), sorted by increasing cost.

    Example: ``pareto_front([1, 2, 3], [0.5, 0.4, 0.9]) == [0, 2]`` (point 1 costs more than 0, scores less).
    Exact duplicates are all kept.
    """
    costs, scores = _check(costs, scores)
    front = []
    for i, (ci, si) in enumerate(zip(costs, scores, strict=True)):
        dominated = any(
            cj <= ci and sj >= si and (cj < ci or sj > si)
            for j, (cj, sj) in enumerate(zip(costs, scores, strict=True))
            if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (costs[i], -scores[i]))


def crossover_cost(
    costs_a: npt.ArrayLike, scores_a: npt.ArrayLike, costs_b: npt.ArrayLike, scores_b: npt.ArrayLike
) -> float | None:
    """The smallest cost at which curve B starts to beat curve A; None if it never does in the common range.

    Each curve is interpolated linearly in log-cost (the study's axes) over the overlap of the cost ranges.
    Typical use: A = a smaller backbone, B = a larger one; the result is the budget above which B wins.
    """
    ca, sa = _check(costs_a, scores_a)
    cb, sb = _check(costs_b, scores_b)
    if min(len(ca), len(cb)) < 2:
        raise ValueError("each curve needs at least 2 points to interpolate")
    if min(ca + cb) <= 0:
        raise ValueError("costs must be positive (they are interpolated in log space)")
    a = sorted(zip(ca, sa, strict=True))
    b = sorted(zip(cb, sb, strict=True))

    def interp(curve: list[tuple[float, float]], x: float) -> float:
        for (x0, y0), (x1, y1) in zip(curve, curve[1:], strict=False):
            if x0 <= x <= x1:
                if x1 == x0:
                    return max(y0, y1)
                t = (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
                return y0 + t * (y1 - y0)
        raise ValueError(f"cost {x} outside the curve's range")

    lo, hi = max(a[0][0], b[0][0]), min(a[-1][0], b[-1][0])
    if lo > hi:
        return None
    grid = sorted({x for x, _ in a + b if lo <= x <= hi} | {lo, hi})
    diff = [interp(b, x) - interp(a, x) for x in grid]
    if diff[0] > 0:
        return grid[0]
    points = list(zip(grid, diff, strict=True))
    for (x0, d0), (x1, d1) in zip(points, points[1:], strict=False):
        if d0 <= 0 < d1:
            t = -d0 / (d1 - d0)  # the difference is linear in log-cost between grid points
            return math.exp(math.log(x0) + t * (math.log(x1) - math.log(x0)))
    return None

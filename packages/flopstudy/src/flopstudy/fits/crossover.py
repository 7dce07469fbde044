"""Where two backbones' curves cross inside the FLOPs both measured, from their fitted laws and resamples.

The difference d(C) = score_larger(C) - score_smaller(C) is evaluated on a fine log grid over the measured
range (the overlap of both curves' budgets), for the fits and for every pair of bootstrap resamples (the curves'
resamples are independent draws, paired by index). A curve pair crosses where d changes sign, whichever model
leads first and whatever the signs of the exponents; the crossing FLOPs are interpolated in log FLOPs (the first
crossing when a saturating form crosses twice). ``p_cross`` is the share of resamples that cross inside the range;
``flops`` is the median crossing over those that do and ``interval`` their central 95%. The outcome is
"crossover" when p_cross >= 50%, "possible crossover" from 5% ("may overtake"), and not crossing ("X wins
throughout", by the fits at the range's middle) only below 5%.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from jaxtyping import Float

from .curve_laws import CurveLaw
from .scaling import percentile_interval

__all__ = ["NONE_BELOW", "Crossover", "first_crossing", "fit_crossover"]

NONE_BELOW = 0.05  # p_cross under which the report says "no crossover in range"
_GRID = 257


@dataclasses.dataclass(frozen=True)
class Crossover:
    """``outcome``: "crossover" (p_cross >= 50%), "possible crossover" (p_cross >= `NONE_BELOW`), else
    "larger wins throughout" or "smaller wins throughout". ``leader_after``: the backbone ahead at the top of the
    range by the fits; ``flops``/``interval`` over the resamples that cross (None when none in range)."""

    smaller: str
    larger: str
    outcome: str
    p_cross: float | None
    flops: float | None
    interval: tuple[float, float] | None
    measured_range: tuple[float, float]
    leader_after: str
    context: str = ""
    task: str = ""

    def describe(self) -> str:
        """One sentence, prefixed with ``context`` (what the two curves share) when given."""
        return f"{self.context}: {self.sentence()}" if self.context else self.sentence()

    def sentence(self) -> str:
        lo, hi = self.measured_range
        span = f"measured range {lo:.3g}-{hi:.3g} FLOPs"
        share = "" if self.p_cross is None else f"; the curves cross in the range in {self.p_cross:.0%} of resamples"
        if self.outcome in ("crossover", "possible crossover"):
            other = self.smaller if self.leader_after == self.larger else self.larger
            at = "" if self.flops is None else f" at {self.flops:.3g} FLOPs"
            ci = "" if self.interval is None else f" (95% interval {self.interval[0]:.3g}-{self.interval[1]:.3g})"
            verb = "overtakes" if self.outcome == "crossover" else "may overtake"
            return f"{self.leader_after} {verb} {other}{at}{ci}{share}"
        winner = self.larger if self.outcome == "larger wins throughout" else self.smaller
        return f"no crossover in the {span}: {winner} wins throughout{share}"

    def to_json(self) -> dict:
        return {"task": self.task, "smaller": self.smaller, "larger": self.larger, "p_cross": self.p_cross,
                "flops": self.flops, "interval": None if self.interval is None else list(self.interval),
                "outcome": self.outcome, "leader_after": self.leader_after,
                "measured_range": list(self.measured_range), "context": self.context, "text": self.describe()}


def first_crossing(log_grid: Float[np.ndarray, " g"], diff: Float[np.ndarray, "s g"]) -> Float[np.ndarray, " s"]:
    """Per row of ``diff`` (sampled on ``log_grid``), the log FLOPs of its first sign change (NaN if none),
    interpolated linearly between the grid points around it."""
    sign = np.sign(diff)
    change = sign[:, :-1] * sign[:, 1:] < 0
    has = change.any(axis=1)
    k = np.argmax(change, axis=1)
    rows = np.arange(diff.shape[0])
    d0, d1 = diff[rows, k], diff[rows, k + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        where = log_grid[k] + (log_grid[k + 1] - log_grid[k]) * d0 / (d0 - d1)
    return np.where(has, where, np.nan)


def fit_crossover(smaller: CurveLaw, larger: CurveLaw, *, names: tuple[str, str] = ("smaller", "larger"),
                  context: str = "", task: str = "", level: float = 0.95) -> Crossover:
    """The crossover of two fitted curves (module docstring); ``names`` label them, ``context`` says what they
    share."""
    lo, hi = max(smaller.x_min, larger.x_min), min(smaller.x_max, larger.x_max)
    if lo > hi:  # no overlap: judge over the span between the two ranges
        lo, hi = min(smaller.x_max, larger.x_max), max(smaller.x_min, larger.x_min)
    grid = np.geomspace(lo, hi, _GRID)
    log_grid = np.log(grid)
    point = np.array([[larger.predict(g) - smaller.predict(g) for g in (lo, math.sqrt(lo * hi), hi)]])
    leader_after = names[1] if point[0, 2] > 0 else names[0]
    count = min(len(smaller.samples), len(larger.samples))
    p_cross, flops, interval = None, None, None
    if count:
        diff = larger.predict_samples(grid)[:count] - smaller.predict_samples(grid)[:count]
        roots = first_crossing(log_grid, diff)
        p_cross = float(np.isfinite(roots).mean())
        if p_cross >= NONE_BELOW:
            flops = float(np.exp(np.median(roots[np.isfinite(roots)])))
            log_interval = percentile_interval(roots, level)
            interval = None if log_interval is None else (math.exp(log_interval[0]), math.exp(log_interval[1]))
        crosses = "crossover" if p_cross >= 0.5 else "possible crossover" if p_cross >= NONE_BELOW else ""
    else:  # no resamples (no noise model): the fits alone decide
        diff = np.array([[larger.predict(g) - smaller.predict(g) for g in grid]])
        root = first_crossing(log_grid, diff)[0]
        crosses = "crossover" if np.isfinite(root) else ""
        flops = float(np.exp(root)) if crosses else None
    if crosses:
        outcome = crosses
    else:
        outcome = "larger wins throughout" if point[0, 1] > 0 else "smaller wins throughout"
    return Crossover(smaller=names[0], larger=names[1], outcome=outcome, p_cross=p_cross, flops=flops,
                     interval=interval, measured_range=(lo, hi), leader_after=leader_after, context=context,
                     task=task)

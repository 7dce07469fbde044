"""Where a larger backbone overtakes a smaller one, from their fitted error-vs-FLOPs power laws.

With errors e_s = A_s F^b_s (smaller) and e_l = A_l F^b_l (larger), log(e_l / e_s) is linear in log F, so the
curves meet at most once, at log F* = (log A_s - log A_l) / (b_l - b_s); the larger model overtakes there when its
error falls faster (b_l < b_s). The interval comes from pairing the two fits' bootstrap resamples.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .scaling import ScalingFit, percentile_interval

__all__ = ["Crossover", "fit_crossover"]


@dataclasses.dataclass(frozen=True)
class Crossover:
    """``outcome``: "crossover" (``flops`` inside ``measured_range``, the overlap of both curves' FLOPs),
    "larger wins throughout", "smaller wins throughout". ``flops`` outside the range is the extrapolated point
    where the larger model would overtake (None if it never does); ``interval`` is its bootstrap interval."""

    smaller: str
    larger: str
    outcome: str
    flops: float | None
    interval: tuple[float, float] | None
    measured_range: tuple[float, float]
    context: str = ""

    def describe(self) -> str:
        """One sentence, prefixed with ``context`` (what the two curves share) when given."""
        return f"{self.context}: {self.sentence()}" if self.context else self.sentence()

    def sentence(self) -> str:
        lo, hi = self.measured_range
        span = f"measured range {lo:.3g}-{hi:.3g} FLOPs"
        ci = "" if self.interval is None else f" (95% interval {self.interval[0]:.3g}-{self.interval[1]:.3g})"
        if self.outcome == "crossover":
            return f"{self.larger} overtakes {self.smaller} at {self.flops:.3g} FLOPs{ci}"
        winner = self.larger if self.outcome == "larger wins throughout" else self.smaller
        head = f"no crossover in the {span}: {winner} wins throughout"
        if self.flops is not None:
            where = "beyond" if self.flops > hi else "below"
            factor = self.flops / hi if self.flops > hi else lo / self.flops
            return f"{head}; the fits meet at {self.flops:.3g} FLOPs{ci}, {factor:.3g}x {where} it (extrapolated)"
        return head

    def to_json(self) -> dict:
        return dataclasses.asdict(self) | {"text": self.describe()}


def _root(log_a_s: np.ndarray, b_s: np.ndarray, log_a_l: np.ndarray, b_l: np.ndarray) -> np.ndarray:
    """log F* where the larger model starts to win (NaN where it never overtakes: b_l >= b_s)."""
    slope = b_l - b_s
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(slope < 0, (log_a_s - log_a_l) / slope, np.nan)


def fit_crossover(smaller: ScalingFit, larger: ScalingFit, *, names: tuple[str, str] = ("smaller", "larger"),
                  context: str = "", level: float = 0.95) -> Crossover:
    """The crossover of two error-vs-FLOPs fits (see the module docstring); ``names`` label them in text and
    ``context`` says what they share."""
    lo, hi = max(smaller.x_min, larger.x_min), min(smaller.x_max, larger.x_max)
    if lo > hi:  # no overlap: judge over the span between the two ranges
        lo, hi = min(smaller.x_max, larger.x_max), max(smaller.x_min, larger.x_min)
    point = _root(*(np.array([v]) for v in (math.log(smaller.prefactor), smaller.exponent,
                                              math.log(larger.prefactor), larger.exponent)))[0]
    flops = float(math.exp(point)) if np.isfinite(point) else None
    interval = None
    count = min(smaller.boot_exponent.size, larger.boot_exponent.size)
    if flops is not None and count:
        roots = _root(smaller.boot_log_prefactor[:count], smaller.boot_exponent[:count],
                      larger.boot_log_prefactor[:count], larger.boot_exponent[:count])
        log_interval = percentile_interval(roots, level)
        interval = None if log_interval is None else (math.exp(log_interval[0]), math.exp(log_interval[1]))
    if flops is not None and lo <= flops <= hi:
        outcome = "crossover"
    else:
        middle = math.sqrt(lo * hi)
        outcome = ("larger wins throughout" if larger.predict(middle) < smaller.predict(middle)
                   else "smaller wins throughout")
    return Crossover(smaller=names[0], larger=names[1], outcome=outcome, flops=flops, interval=interval,
                     measured_range=(lo, hi), context=context)

"""Power laws y = prefactor * x ** exponent, fitted by least squares in log-log, with bootstrap intervals.

Used for upstream loss vs FLOPs per backbone family (downstream curves have their own laws: `curve_laws`). The
line itself is `flopmeter.fit_power_law`, the one least-squares power law of the project. The bootstrap resamples
the (x, y) points with replacement (a resample with a single distinct x is drawn again) and keeps every resample's
fit, so any derived number (a prediction) gets an interval from the same resamples.

    fit = fit_scaling_law(flops, losses, seed=0)
    fit.exponent, fit.exponent_interval(), fit.r_squared, fit.predict(3e18), fit.predict_interval(3e18)
"""

from __future__ import annotations

import dataclasses

import flopmeter
import numpy as np
from jaxtyping import Float

__all__ = ["ScalingFit", "fit_scaling_law", "outside_range", "percentile_interval"]

MIN_POINTS_FOR_INTERVAL = 3


def percentile_interval(samples: Float[np.ndarray, " s"], level: float = 0.95) -> tuple[float, float] | None:
    """The central ``level`` interval of the finite ``samples``; None when there are none."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return None
    tail = 50.0 * (1.0 - level)
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def _line_fits(lx: Float[np.ndarray, "b n"], ly: Float[np.ndarray, "b n"]) -> tuple[np.ndarray, np.ndarray]:
    """Slope and intercept of the least-squares line through each row's points."""
    mx, my = lx.mean(axis=1, keepdims=True), ly.mean(axis=1, keepdims=True)
    dx = lx - mx
    var = (dx * dx).sum(axis=1)
    slope = (dx * (ly - my)).sum(axis=1) / np.where(var > 0, var, np.nan)
    return slope, my[:, 0] - slope * mx[:, 0]


@dataclasses.dataclass(frozen=True)
class ScalingFit:
    """``y = prefactor * x ** exponent``; ``r_squared`` of the log-log fit over ``n`` points spanning
    ``x_min``..``x_max``; ``boot_*`` are the bootstrap resamples' parameters (empty below 3 points)."""

    prefactor: float
    exponent: float
    r_squared: float
    n: int
    x_min: float
    x_max: float
    boot_log_prefactor: Float[np.ndarray, " b"] = dataclasses.field(repr=False, compare=False)
    boot_exponent: Float[np.ndarray, " b"] = dataclasses.field(repr=False, compare=False)

    def predict(self, x: float) -> float:
        """The fitted y at ``x`` (> 0)."""
        if not x > 0:
            raise ValueError(f"x={x!r}: expected > 0 (the law is fitted in log space)")
        return float(self.prefactor * x**self.exponent)

    def predict_samples(self, x: float) -> Float[np.ndarray, " b"]:
        """The bootstrap resamples' predictions at ``x``."""
        return np.exp(self.boot_log_prefactor + self.boot_exponent * np.log(x))

    def predict_interval(self, x: float, level: float = 0.95) -> tuple[float, float] | None:
        """Bootstrap interval of the prediction at ``x``; None with fewer than 3 points."""
        return percentile_interval(self.predict_samples(x), level)

    def exponent_interval(self, level: float = 0.95) -> tuple[float, float] | None:
        return percentile_interval(self.boot_exponent, level)

    def prefactor_interval(self, level: float = 0.95) -> tuple[float, float] | None:
        interval = percentile_interval(self.boot_log_prefactor, level)
        return None if interval is None else (float(np.exp(interval[0])), float(np.exp(interval[1])))

    def extrapolation(self, x: float) -> str | None:
        """None inside the fitted range, else how far outside, e.g. "3.2x beyond the largest measured budget"."""
        return outside_range(x, self.x_min, self.x_max)

    def to_json(self) -> dict:
        return {"prefactor": self.prefactor, "exponent": self.exponent, "r_squared": self.r_squared, "n": self.n,
                "x_min": self.x_min, "x_max": self.x_max, "exponent_interval": self.exponent_interval(),
                "prefactor_interval": self.prefactor_interval()}


def fit_scaling_law(
    x: Float[np.ndarray, " n"], y: Float[np.ndarray, " n"], *, n_boot: int = 1000, seed: int = 0
) -> ScalingFit:
    """Least-squares fit of log y = log prefactor + exponent * log x, with ``n_boot`` bootstrap resamples drawn
    from ``numpy.random.default_rng(seed)``. Needs positive x and y and at least 2 distinct x."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape:
        raise ValueError(f"x (shape {x.shape}) and y (shape {y.shape}): expected the same length")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)) and np.all(x > 0) and np.all(y > 0)):
        raise ValueError(f"x={x.tolist()}, y={y.tolist()}: expected finite positive numbers (log-log fit)")
    if np.unique(x).size < 2:
        raise ValueError(f"x={x.tolist()}: expected at least 2 distinct values to fit an exponent")
    if n_boot < 0:
        raise ValueError(f"n_boot={n_boot}: expected >= 0")
    lx, ly = np.log(x), np.log(y)
    line = flopmeter.fit_power_law(x, y)
    boot_a, boot_b = np.zeros(0), np.zeros(0)
    if x.size >= MIN_POINTS_FOR_INTERVAL and n_boot > 0:
        rng = np.random.default_rng(seed)
        index = rng.integers(0, x.size, size=(n_boot, x.size))
        for _ in range(100):  # redraw resamples whose x are all equal (no slope); rare beyond 3 points
            flat = np.ptp(lx[index], axis=1) == 0
            if not flat.any():
                break
            index[flat] = rng.integers(0, x.size, size=(int(flat.sum()), x.size))
        boot_b, boot_a = _line_fits(lx[index], ly[index])
        keep = np.isfinite(boot_b)
        boot_a, boot_b = boot_a[keep], boot_b[keep]
    return ScalingFit(prefactor=line.a, exponent=line.b, r_squared=line.r_squared,
                      n=int(x.size), x_min=float(x.min()), x_max=float(x.max()),
                      boot_log_prefactor=boot_a, boot_exponent=boot_b)


def outside_range(x: float, x_min: float, x_max: float) -> str | None:
    """None when ``x`` lies in [x_min, x_max] (measured budgets), else how far outside, e.g. "3.2x beyond the
    largest measured budget (1e12 FLOPs)"."""
    if x > x_max * (1 + 1e-9):
        return f"{x / x_max:.3g}x beyond the largest measured budget ({x_max:.3g} FLOPs)"
    if x < x_min * (1 - 1e-9):
        return f"{x_min / x:.3g}x below the smallest measured budget ({x_min:.3g} FLOPs)"
    return None

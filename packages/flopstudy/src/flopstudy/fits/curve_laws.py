"""Score-vs-FLOPs laws of one curve: two forms, weighted least squares, a parametric hierarchical bootstrap.

Forms (C = pre-training FLOPs, C0 = the geometric mean of the curve's budgets, a pivot for conditioning):
- ``"power"``:      score = 100 - A * (C / C0) ** b     (the downstream error is a pure power law, any sign of b)
- ``"saturating"``: score = s_max - A * (C / C0) ** -c  (c > 0, A >= 0, s_max <= 100: the score levels off at s_max)

A curve's observations are its encoders (`EncoderPoint`: mean score y_j of n_j fine-tuning seeds); the
`NoiseModel` gives each the variance tau^2 + sigma^2 / n_j (tau: between encoders, fit misfit included;
sigma: between fine-tuning seeds of one encoder). Fits are weighted least squares: the power law as a weighted
line in log error (closed form; weights error^2 / variance by the delta method), the saturating form with
`scipy.optimize.least_squares` under its bounds (its bootstrap refits profile the exponent c on a grid: for a fixed
c the form is linear, so thousands of refits take milliseconds).

Intervals come from a parametric hierarchical bootstrap around the fit: each resample scales both variances by
one draw of df / chi2(df) (the uncertainty of the estimated variances, so intervals follow Student's t with the
noise model's degrees of freedom), draws a new effect for every encoder (variance tau^2), then the mean of its
n_j seeds (variance sigma^2 / n_j), and refits. Every curve draws from its own stream (`stream`), so the curves'
resamples are independent and a curve's draws do not depend on which other curves are in the table (its
intervals do, through the task's noise model).

    law = fit_law(curve.encoders, "power", noise, n_boot=1000, rng=stream(0, "seg", "mae"))
    law.predict(3e18), law.predict_interval(3e18), law.extrapolation(3e18)
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence

import numpy as np
from jaxtyping import Float
from scipy.optimize import least_squares

from ..results.curves import EncoderPoint
from .scaling import outside_range, percentile_interval

__all__ = ["FORMS", "MIN_BUDGETS", "CurveLaw", "NoiseModel", "estimate_noise", "fit_law", "stream"]

FORMS = ("power", "saturating")
MIN_BUDGETS = {"power": 2, "saturating": 3}  # = the number of parameters
_PARAMS = {"power": ("A", "b"), "saturating": ("s_max", "A", "c")}


def stream(seed: int, *parts: str) -> np.random.Generator:
    """An independent random stream for ``parts`` (e.g. a curve's key fields): seeded by ``seed`` and a stable
    hash of the parts, so it is the same in every process and differs between curves."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


@dataclasses.dataclass(frozen=True)
class NoiseModel:
    """The variances of one task's encoder observations (module docstring). ``seed_var`` (sigma^2) is pooled over
    every encoder with 2+ seeds (``seed_df`` degrees of freedom); ``encoder_var`` (tau^2) is what the fits'
    residuals hold beyond seed noise (``residual_df``, None when no curve has more budgets than parameters);
    ``df`` drives the t-like widening. ``known`` is False when no variance could be estimated at all."""

    seed_var: float | None
    seed_df: int
    encoder_var: float | None
    residual_df: int
    note: str = ""

    @property
    def known(self) -> bool:
        return self.seed_var is not None or self.encoder_var is not None

    @property
    def df(self) -> int:
        return self.residual_df if self.encoder_var is not None and self.residual_df > 0 else self.seed_df

    def variance(self, n: Float[np.ndarray, " k"]) -> Float[np.ndarray, " k"]:
        """Variance of the mean score of an encoder with ``n`` seeds."""
        return (self.encoder_var or 0.0) + (self.seed_var or 0.0) / np.asarray(n, np.float64)

    def scales(self, rng: np.random.Generator, size: int) -> Float[np.ndarray, " s"]:
        """Draws of df / chi2(df): the estimated variances' uncertainty (1 with infinite df)."""
        return self.df / rng.chisquare(self.df, size) if self.df > 0 else np.ones(size)

    def describe(self) -> str:
        seed = "unknown" if self.seed_var is None else f"{math.sqrt(self.seed_var):.3g} ({self.seed_df} df)"
        enc = "unknown" if self.encoder_var is None else f"{math.sqrt(self.encoder_var):.3g} ({self.residual_df} df)"
        return f"seed sd {seed}, encoder sd {enc}" + (f"; {self.note}" if self.note else "")

    def to_json(self) -> dict:
        return dataclasses.asdict(self) | {"df": self.df}


def estimate_noise(curves: Sequence[tuple[Sequence[EncoderPoint], Sequence[float], int]]) -> NoiseModel:
    """The noise model of one task from its curves, each given as (encoders, fitted scores at them, parameters of
    the fitted form). sigma^2 pools the spread of seeds within each encoder; tau^2 is the residual variance per
    degree of freedom less the seed part of it (sigma^2 times the mean 1/n_j), floored at 0 (a moment estimate)."""
    within = [np.asarray(p.scores) - p.mean for points, _, _ in curves for p in points if p.n >= 2]
    seed_df = int(sum(d.size - 1 for d in within))
    seed_var = float(sum(d @ d for d in within) / seed_df) if seed_df else None
    rss, residual_df, inverse_n = 0.0, 0, []
    for points, fitted, params in curves:
        if len({p.flops for p in points}) > params:
            r = np.array([p.mean for p in points]) - np.asarray(fitted, np.float64)
            rss += float(r @ r)
            residual_df += len(points) - params
            inverse_n += [1.0 / p.n for p in points]
    if residual_df == 0:
        note = "no curve has more budgets than parameters: encoder-level variance unknown"
        return NoiseModel(seed_var, seed_df, None, 0, note + (", intervals hold seed variance only" if seed_df
                                                              else ", no intervals"))
    seed_part = (seed_var or 0.0) * float(np.mean(inverse_n))
    return NoiseModel(seed_var, seed_df, max(rss / residual_df - seed_part, 0.0), residual_df)


def _power(lx: np.ndarray, y: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Weighted line in log error: rows of (log A, b); NaN rows where a score reaches 100."""
    error = 100.0 - y
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log(np.where(error > 0, error, np.nan))
    w = error**2 / var
    sw = w.sum(axis=-1, keepdims=True)
    mx, mz = (w * lx).sum(axis=-1, keepdims=True) / sw, (w * z).sum(axis=-1, keepdims=True) / sw
    dx = lx - mx
    sxx = (w * dx * dx).sum(axis=-1)
    b = (w * dx * (z - mz)).sum(axis=-1) / np.where(sxx > 0, sxx, np.nan)
    return np.stack([mz[..., 0] - b * mx[..., 0], b], axis=-1)


def _saturating_curve(theta: np.ndarray, lx: np.ndarray) -> np.ndarray:
    s_max, a, c = theta
    return s_max - a * np.exp(-c * lx)


_C_GRID = np.geomspace(1e-3, 10.0, 121)  # the saturating exponent c, profiled on a grid in the bootstrap
_C_STEP = 10.0 ** (4 / 120)  # the grid's ratio between neighbours


def _linear_part(lx: np.ndarray, y: np.ndarray, var: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows of ``y`` [s, k] and exponents ``c`` [s, g]: the bounded weighted least-squares (s_max, A)
    [s, g, 2] and its cost [s, g]. With c fixed the model is linear, the problem convex: its solution is the
    unconstrained one where feasible, else the better of the faces s_max = 100 and A = 0."""
    w = 1.0 / var
    u = np.exp(-c[..., None] * lx)  # [s, g, k]
    y3 = y[:, None, :]
    sw = w.sum()
    ubar, ybar = (u * w).sum(-1) / sw, (y3 * w).sum(-1) / sw  # [s, g], [s, 1]
    du = u - ubar[..., None]
    sxx = (w * du * du).sum(-1)
    beta = (w * du * (y3 - ybar[..., None])).sum(-1) / np.where(sxx > 0, sxx, np.nan)
    free = np.stack([ybar - beta * ubar, -beta], -1)  # y = s_max - A u
    top = np.stack([np.full_like(beta, 100.0), np.clip((w * u * (100.0 - y3)).sum(-1) / (w * u * u).sum(-1), 0.0,
                                                       None)], -1)
    flat = np.stack([np.broadcast_to(np.minimum(ybar, 100.0), beta.shape), np.zeros_like(beta)], -1)
    thetas = np.stack([np.nan_to_num(free), top, flat], -2)  # [s, g, 3, 2]
    r = y3[..., None, :] - (thetas[..., 0:1] - thetas[..., 1:2] * u[..., None, :])
    costs = (w * r * r).sum(-1)
    ok = (free[..., 1] >= 0) & (free[..., 0] <= 100.0)
    costs[..., 0] = np.where(ok, costs[..., 0], np.inf)
    which = costs.argmin(-1)[..., None]
    return np.take_along_axis(thetas, which[..., None], -2)[..., 0, :], np.take_along_axis(costs, which, -1)[..., 0]


def _saturating_profile(lx: np.ndarray, y: np.ndarray, var: np.ndarray) -> np.ndarray:
    """(s_max, A, c) rows for the rows of ``y`` [s, k]: the exponent c on `_C_GRID`, then zoomed in three times
    around each row's best (to 1e-3 of a grid step), with (s_max, A) solved exactly at each c."""
    rows = np.arange(len(y))
    c = np.broadcast_to(_C_GRID, (len(y), _C_GRID.size))
    span = _C_STEP
    for _ in range(4):
        linear, cost = _linear_part(lx, y, var, c)
        best = cost.argmin(-1)
        chosen = c[rows, best]
        c = np.clip(chosen[:, None] * span ** np.linspace(-1, 1, 21), 1e-4, 10.0)
        span = span ** 0.1
    return np.column_stack([linear[rows, best], chosen])


def _saturating(lx: np.ndarray, y: np.ndarray, var: np.ndarray) -> np.ndarray:
    """(s_max, A, c) by `scipy.optimize.least_squares` under the bounds, started from the profile's best and a
    few fixed exponents; the best converged solution (NaN when none converges)."""
    sd = np.sqrt(var)
    starts = [_saturating_profile(lx, y[None], var)[0]]
    top = min(100.0, float(y.max() + max(np.ptp(y), 1.0)))
    starts += [np.array([top, max(top - float(y.min()), 1e-3) * math.exp(-c * float(lx.min())), c])
               for c in (0.1, 0.5, 2.0)]
    low, high = [-np.inf, 0.0, 1e-4], [100.0, np.inf, 10.0]
    best, cost = np.full(3, np.nan), np.inf
    for start in starts:
        result = least_squares(lambda t: (_saturating_curve(t, lx) - y) / sd, np.clip(start, low, high),
                               bounds=(low, high))
        if result.success and result.cost < cost:
            best, cost = result.x, result.cost
    return best


def _fit(form: str, lx: np.ndarray, y: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Parameters of ``form`` for ``y`` [k] (exact fit) or each row of ``y`` [s, k] (the bootstrap: the saturating
    form on its exponent grid); power: (log A, b), saturating: (s_max, A, c)."""
    if form == "power":
        return _power(lx, y, var)
    return _saturating(lx, y, var) if y.ndim == 1 else _saturating_profile(lx, y, var)


def _predict(form: str, theta: np.ndarray, lx: np.ndarray) -> np.ndarray:
    """Scores of parameter rows ``theta`` [..., p] at log(C / C0) ``lx`` [g]: [..., g]."""
    theta = theta[..., None]
    if form == "power":
        return 100.0 - np.exp(theta[..., 0, :] + theta[..., 1, :] * lx)
    return theta[..., 0, :] - theta[..., 1, :] * np.exp(-theta[..., 2, :] * lx)


@dataclasses.dataclass(frozen=True)
class CurveLaw:
    """One fitted form (module docstring): ``params`` at the pivot ``pivot``, fitted on ``n`` encoders at budgets
    ``x_min``..``x_max``; ``samples`` are the bootstrap's parameter rows and ``scales`` their variance scales
    (empty without a noise model)."""

    form: str
    params: tuple[float, ...]
    pivot: float
    n: int
    x_min: float
    x_max: float
    samples: Float[np.ndarray, "s p"] = dataclasses.field(repr=False, compare=False)
    scales: Float[np.ndarray, " s"] = dataclasses.field(repr=False, compare=False)

    def _lx(self, x: Float[np.ndarray, " g"] | float) -> np.ndarray:
        x = np.atleast_1d(np.asarray(x, np.float64))
        if not np.all(x > 0):
            raise ValueError(f"x={x.tolist()}: expected FLOPs > 0")
        return np.log(x / self.pivot)

    def predict(self, x: float) -> float:
        """The fitted score (%) at ``x`` FLOPs."""
        return float(_predict(self.form, np.array(self.params), self._lx(x))[0])

    def predict_samples(self, x: Float[np.ndarray, " g"] | float) -> Float[np.ndarray, "s g"]:
        """Every bootstrap resample's score at each of ``x``."""
        return _predict(self.form, self.samples, self._lx(x))

    def predict_interval(self, x: float, level: float = 0.95) -> tuple[float, float] | None:
        """Interval of the curve (the mean score of an encoder) at ``x``; None without a noise model."""
        return percentile_interval(self.predict_samples(x)[:, 0], level) if len(self.samples) else None

    @property
    def exponent(self) -> float:
        """How the distance to the curve's ceiling (100 or s_max) scales with FLOPs: b, or -c."""
        return self.params[1] if self.form == "power" else -self.params[2]

    def exponent_interval(self, level: float = 0.95) -> tuple[float, float] | None:
        if not len(self.samples):
            return None
        return percentile_interval(self.samples[:, 1] if self.form == "power" else -self.samples[:, 2], level)

    @property
    def ceiling(self) -> float:
        """The score the curve approaches: 100 for the power law, s_max for the saturating form."""
        return 100.0 if self.form == "power" else self.params[0]

    @property
    def prefactor(self) -> float:
        """A at the pivot."""
        return math.exp(self.params[0]) if self.form == "power" else self.params[1]

    def extrapolation(self, x: float) -> str | None:
        """None inside the fitted range, else how far outside, e.g. "3.2x beyond the largest measured budget"."""
        return outside_range(x, self.x_min, self.x_max)

    def factor_outside(self, x: float) -> float:
        """How many times outside the fitted range ``x`` lies (1 inside)."""
        return max(x / self.x_max, self.x_min / x, 1.0)

    def equation(self) -> str:
        if self.form == "power":
            return f"score = 100 - {self.prefactor:.3g} * (C / {self.pivot:.3g}) ^ {self.exponent:.3g}"
        s_max, a, c = self.params
        return f"score = {s_max:.3g} - {a:.3g} * (C / {self.pivot:.3g}) ^ -{c:.3g}"

    def to_json(self) -> dict:
        return {"form": self.form, "params": dict(zip(_PARAMS[self.form], self._public(), strict=True)),
                "pivot": self.pivot, "exponent": self.exponent, "exponent_interval": self.exponent_interval(),
                "n": self.n, "x_min": self.x_min, "x_max": self.x_max, "equation": self.equation()}

    def _public(self) -> tuple[float, ...]:
        return (self.prefactor, self.params[1]) if self.form == "power" else self.params


def fit_law(points: Sequence[EncoderPoint], form: str, noise: NoiseModel, *, n_boot: int = 1000,
            rng: np.random.Generator) -> CurveLaw:
    """``form`` fitted to the encoders ``points`` with ``noise``'s weights and ``n_boot`` bootstrap resamples
    drawn from ``rng`` (module docstring). ValueError with fewer distinct budgets than parameters, or a power
    law on a score of 100%."""
    if form not in FORMS:
        raise ValueError(f"form={form!r}: expected one of {FORMS}")
    flops = np.array([p.flops for p in points], np.float64)
    y = np.array([p.mean for p in points], np.float64)
    n = np.array([p.n for p in points], np.float64)
    if np.unique(flops).size < MIN_BUDGETS[form]:
        raise ValueError(f"{np.unique(flops).size} budget(s): the {form} form needs {MIN_BUDGETS[form]}")
    if form == "power" and np.any(y >= 100):
        raise ValueError("a score of 100%: error 0 has no logarithm")
    pivot = float(np.exp(np.log(np.unique(flops)).mean()))
    lx = np.log(flops / pivot)
    var = noise.variance(n) if noise.known else np.ones_like(y)
    var = var if np.all(var > 0) else np.ones_like(y)
    theta = _fit(form, lx, y, var)
    if not np.all(np.isfinite(theta)):
        raise ValueError(f"the {form} form did not converge on these points")
    samples, scales = np.zeros((0, theta.size)), np.zeros(0)
    if noise.known and n_boot > 0:
        scales = noise.scales(rng, n_boot)
        encoder = rng.standard_normal((n_boot, y.size)) * np.sqrt(scales[:, None] * (noise.encoder_var or 0.0))
        seeds = rng.standard_normal((n_boot, y.size)) * np.sqrt(scales[:, None] * (noise.seed_var or 0.0) / n)
        samples = _fit(form, lx, _predict(form, theta, lx) + encoder + seeds, var)
        keep = np.all(np.isfinite(samples), axis=1)
        samples, scales = samples[keep], scales[keep]
    return CurveLaw(form, tuple(float(v) for v in theta), pivot, int(y.size), float(flops.min()),
                    float(flops.max()), samples, scales)

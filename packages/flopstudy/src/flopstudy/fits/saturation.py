"""The saturation model of Abnar et al. 2021 ("Exploring the Limits of Large Scale Pre-training", eq. 1):

    e_DS = k * e_US ** a + e_IR

downstream error as a power of upstream error plus an irreducible downstream error e_IR that better pre-training
cannot remove. Errors are in % (100 - accuracy). Fitted by least squares with k >= 0, e_IR >= 0 and a > 0: for a
fixed a the model is linear in (k, e_IR), so a is profiled over a log grid (0.02-20) and refined with a bounded
scalar search; bootstrap resamples (points drawn with replacement) give the intervals.

    fit = fit_saturation(100 - knn_accuracy, 100 - miou, seed=0)
    fit.e_ir, fit.interval("e_ir"), fit.predict(30.0)

Abnar et al. fit the model to the *upper frontier* of one pre-training setup: among models pre-trained the same
way (varying size and length), the best downstream accuracy reached at each upstream accuracy; models below it
transfer worse for reasons other than upstream accuracy. `fit_frontier_saturation` does that from one
observation per pre-trained encoder (its upstream accuracy and its fine-tuning seeds' mean):

- the frontier (`upper_frontier`): the encoders no encoder of lower-or-equal upstream accuracy beats downstream
  (the running maximum of downstream accuracy, by upstream accuracy);
- the fit: `fit_saturation` on the frontier (at least 4 frontier encoders with 2 distinct upstream errors);
- the interval: a parametric bootstrap of the measurements with the encoders fixed: each encoder's downstream
  mean is redrawn with its standard error (the seed standard deviation pooled over encoders with 2+ seeds, over
  the square root of its seed count; without replicated encoders, the frontier fit's residual standard
  deviation), the frontier is found again and refitted. Resamples whose frontier is too small are counted in
  ``boot_failed``. Upstream accuracies are taken as measured.

    fit = fit_frontier_saturation(upstream_accuracy, [seed_scores_of_each_encoder], seed=0)
    fit.frontier, fit.fit.e_ir, fit.fit.interval("e_ir")
"""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import Float
from scipy.optimize import minimize_scalar

from .scaling import percentile_interval

__all__ = ["FrontierSaturation", "SaturationFit", "fit_frontier_saturation", "fit_saturation", "upper_frontier"]

_A_GRID = np.geomspace(0.02, 20.0, 400)
MIN_POINTS = 4


def _profile(u_log: np.ndarray, y: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each a (last axis of ``a`` broadcast against points on the last axis of ``u_log``/``y``), the
    constrained least-squares k >= 0, e_IR >= 0 and the sum of squared residuals. Shapes: u_log/y [..., n],
    a [..., g] -> outputs [..., g]."""
    u = np.exp(a[..., :, None] * u_log[..., None, :])  # [..., g, n]
    y = y[..., None, :]
    mu, my = u.mean(-1), y.mean(-1)
    du = u - mu[..., None]
    var = (du * du).sum(-1)
    k = np.where(var > 0, (du * (y - my[..., None])).sum(-1) / np.where(var > 0, var, 1.0), 0.0)
    c = my - k * mu
    # Boundary solutions, used where the free one breaks a constraint.
    k0_c = np.broadcast_to(my, k.shape)  # k = 0
    uu = (u * u).sum(-1)
    c0_k = np.maximum((u * y).sum(-1) / np.where(uu > 0, uu, 1.0), 0.0)  # e_IR = 0
    candidates = [(k, c), (np.zeros_like(k), k0_c), (c0_k, np.zeros_like(k))]
    best_sse = np.full(k.shape, np.inf)
    best_k, best_c = np.zeros_like(k), np.zeros_like(k)
    for kk, cc in candidates:
        feasible = (kk >= 0) & (cc >= 0)
        sse = (((kk[..., None] * u + cc[..., None]) - y) ** 2).sum(-1)
        better = feasible & (sse < best_sse)
        best_sse = np.where(better, sse, best_sse)
        best_k, best_c = np.where(better, kk, best_k), np.where(better, cc, best_c)
    return best_k, best_c, best_sse


def _parabola_refine(sse: np.ndarray) -> np.ndarray:
    """Per row, the a at the minimum of a parabola (in log a) through the best grid point and its neighbours."""
    log_grid = np.log(_A_GRID)
    step = log_grid[1] - log_grid[0]
    i = np.clip(np.argmin(sse, axis=1), 1, _A_GRID.size - 2)
    rows = np.arange(sse.shape[0])
    left, mid, right = sse[rows, i - 1], sse[rows, i], sse[rows, i + 1]
    curvature = left - 2 * mid + right
    shift = np.where(curvature > 0, 0.5 * (left - right) / np.where(curvature > 0, curvature, 1.0), 0.0)
    return np.exp(log_grid[i] + np.clip(shift, -1.0, 1.0) * step)


@dataclasses.dataclass(frozen=True)
class SaturationFit:
    """``e_DS = k * e_US ** a + e_IR`` (errors in %); ``boot`` holds resampled (k, a, e_IR) rows."""

    k: float
    a: float
    e_ir: float
    r_squared: float
    n: int
    boot: Float[np.ndarray, "b 3"] = dataclasses.field(repr=False, compare=False)

    def predict(self, upstream_error: float) -> float:
        return float(self.k * upstream_error**self.a + self.e_ir)

    def interval(self, name: str, level: float = 0.95) -> tuple[float, float] | None:
        """Bootstrap interval of "k", "a" or "e_ir"; None without resamples."""
        names = ("k", "a", "e_ir")
        if name not in names:
            raise ValueError(f"name={name!r}: expected one of {names}")
        return percentile_interval(self.boot[:, names.index(name)], level) if self.boot.size else None

    def to_json(self) -> dict:
        return {"k": self.k, "a": self.a, "e_ir": self.e_ir, "r_squared": self.r_squared, "n": self.n,
                **{f"{name}_interval": self.interval(name) for name in ("k", "a", "e_ir")}}


def _fit_one(u_log: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    k, c, sse = _profile(u_log, y, _A_GRID)
    i = int(np.argmin(sse))
    lo, hi = _A_GRID[max(i - 1, 0)], _A_GRID[min(i + 1, _A_GRID.size - 1)]

    def objective(a: float) -> float:
        return float(_profile(u_log, y, np.array([a]))[2][0])

    refined = minimize_scalar(objective, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
    a = float(refined.x) if refined.fun <= sse[i] else float(_A_GRID[i])
    k_a, c_a, sse_a = _profile(u_log, y, np.array([a]))
    return float(k_a[0]), a, float(c_a[0]), float(sse_a[0])


def fit_saturation(
    upstream_error: Float[np.ndarray, " n"], downstream_error: Float[np.ndarray, " n"], *, n_boot: int = 200,
    seed: int = 0,
) -> SaturationFit:
    """Fits the saturation model to paired upstream/downstream errors (in %, upstream > 0); needs >= 4 points
    and 2 distinct upstream errors. ``n_boot`` resamples from ``numpy.random.default_rng(seed)``."""
    u, y = np.asarray(upstream_error, np.float64), np.asarray(downstream_error, np.float64)
    if u.shape != y.shape or u.size < MIN_POINTS:
        raise ValueError(f"upstream_error ({u.size}) and downstream_error ({y.size}): expected pairs, at least "
                         f"{MIN_POINTS} (three parameters are fitted)")
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(y)) and np.all(u > 0) and np.all(y >= 0)):
        raise ValueError(f"upstream_error={u.tolist()}, downstream_error={y.tolist()}: expected upstream > 0 and "
                         "downstream >= 0 (errors in %)")
    if np.unique(u).size < 2:
        raise ValueError(f"upstream_error={u.tolist()}: expected at least 2 distinct values")
    if n_boot < 0:
        raise ValueError(f"n_boot={n_boot}: expected >= 0")
    u_log = np.log(u)
    k, a, e_ir, sse = _fit_one(u_log, y)
    total = float(((y - y.mean()) ** 2).sum())
    boot = np.zeros((0, 3))
    if n_boot:
        rng = np.random.default_rng(seed)
        index = rng.integers(0, u.size, size=(n_boot, u.size))
        index = index[np.ptp(u_log[index], axis=1) > 0]
        ub, yb = u_log[index], y[index]
        _, _, bsse = _profile(ub, yb, np.broadcast_to(_A_GRID, (index.shape[0], _A_GRID.size)))
        best_a = _parabola_refine(bsse)
        bk, bc, _ = _profile(ub, yb, best_a[:, None])
        boot = np.stack([bk[:, 0], best_a, bc[:, 0]], axis=1)
    return SaturationFit(k=k, a=a, e_ir=e_ir, r_squared=1.0 - sse / total if total > 0 else 1.0, n=int(u.size),
                         boot=boot)


def upper_frontier(upstream_accuracy: Float[np.ndarray, " n"], downstream_accuracy: Float[np.ndarray, " n"]
                   ) -> np.ndarray:
    """Indices (by upstream accuracy) of the points no point of lower-or-equal upstream accuracy beats downstream:
    the best downstream accuracy reached at each upstream accuracy. Ties keep the first point."""
    u, d = np.asarray(upstream_accuracy, np.float64), np.asarray(downstream_accuracy, np.float64)
    order = np.lexsort((-d, u))  # by upstream, the best downstream first among equal upstream
    keep, best = [], -np.inf
    for i in order:
        if d[i] > best:
            keep.append(int(i))
            best = d[i]
    return np.array(keep, dtype=np.int64)


@dataclasses.dataclass(frozen=True)
class FrontierSaturation:
    """The saturation fit of one pre-training setup's upper frontier (accuracies in %). ``frontier``: indices of
    the encoders on it; ``fit`` None (with ``note``) when it has too few points; ``sigma``: the standard error
    model's per-seed standard deviation and where it came from (``sigma_source``); ``boot_failed``: resamples
    left out of the interval for a too-small frontier."""

    upstream_accuracy: tuple[float, ...]
    downstream_accuracy: tuple[float, ...]
    seeds: tuple[int, ...]
    frontier: tuple[int, ...]
    fit: SaturationFit | None
    sigma: float | None
    sigma_source: str
    boot_failed: int
    note: str

    def to_json(self) -> dict:
        return {"upstream_accuracy": list(self.upstream_accuracy),
                "downstream_accuracy": list(self.downstream_accuracy), "seeds": list(self.seeds),
                "frontier": list(self.frontier),
                "fit": None if self.fit is None else self.fit.to_json(), "sigma": self.sigma,
                "sigma_source": self.sigma_source, "boot_failed": self.boot_failed, "note": self.note}


def _fit_grid(u_log: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(k, a, e_IR) from the a grid refined by a parabola (the bootstrap's fast path)."""
    _, _, sse = _profile(u_log[None], y[None], _A_GRID[None])
    a = _parabola_refine(sse)
    k, c, _ = _profile(u_log[None], y[None], a[:, None])
    return float(k[0, 0]), float(a[0]), float(c[0, 0])


def _frontier_problem(u: np.ndarray) -> str:
    if u.size < MIN_POINTS or np.unique(u).size < 2:
        return f"{u.size} encoder(s) on the upper frontier: need {MIN_POINTS} with 2 distinct upstream accuracies"
    if np.any(u >= 100.0):
        return "an upstream accuracy of 100% on the frontier: upstream error 0 cannot be raised to a power"
    return ""


def fit_frontier_saturation(upstream_accuracy: Float[np.ndarray, " n"], seed_scores: list[list[float]], *,
                            n_boot: int = 400, seed: int = 0) -> FrontierSaturation:
    """The saturation model on the upper frontier of one setup's encoders (module docstring): ``upstream_accuracy``
    (%) and ``seed_scores`` (each encoder's downstream accuracies in %, one per fine-tuning seed) per encoder."""
    u = np.asarray(upstream_accuracy, np.float64)
    if u.ndim != 1 or len(seed_scores) != u.size or any(len(s) == 0 for s in seed_scores):
        raise ValueError(f"upstream_accuracy ({u.size}) and seed_scores ({len(seed_scores)}): expected one upstream "
                         "accuracy and at least one score per encoder")
    if n_boot < 0:
        raise ValueError(f"n_boot={n_boot}: expected >= 0")
    scores = [np.asarray(s, np.float64) for s in seed_scores]
    d = np.array([s.mean() for s in scores])
    counts = np.array([s.size for s in scores])
    front = upper_frontier(u, d)
    note = _frontier_problem(u[front])
    replicated = [s for s in scores if s.size > 1]
    sigma, source = None, "none"
    if replicated:
        dof = sum(s.size - 1 for s in replicated)
        sigma = float(np.sqrt(sum(((s - s.mean()) ** 2).sum() for s in replicated) / dof))
        source = f"seeds pooled over {len(replicated)} encoder(s)"
    base = dict(upstream_accuracy=tuple(u.tolist()), downstream_accuracy=tuple(d.tolist()),
                seeds=tuple(int(c) for c in counts), frontier=tuple(int(i) for i in front))
    if note:
        return FrontierSaturation(**base, fit=None, sigma=sigma, sigma_source=source, boot_failed=0, note=note)
    point = fit_saturation(100.0 - u[front], 100.0 - d[front], n_boot=0)
    if sigma is None and front.size > 3:
        residual = (100.0 - d[front]) - np.array([point.predict(e) for e in 100.0 - u[front]])
        sigma = float(np.sqrt((residual**2).sum() / (front.size - 3)))
        source = "residuals of the frontier fit (no encoder has 2 seeds)"
    rows, failed = [], 0
    if n_boot and sigma is not None:
        rng = np.random.default_rng(seed)
        noise = rng.normal(size=(n_boot, u.size)) * (sigma / np.sqrt(counts))
        for draw in d + noise:
            f = upper_frontier(u, draw)
            if _frontier_problem(u[f]) or np.any(draw[f] > 100.0):
                failed += 1
                continue
            rows.append(_fit_grid(np.log(100.0 - u[f]), 100.0 - draw[f]))
    boot = np.array(rows, np.float64).reshape(-1, 3)
    fit = dataclasses.replace(point, boot=boot)
    return FrontierSaturation(**base, fit=fit, sigma=sigma, sigma_source=source, boot_failed=failed, note="")

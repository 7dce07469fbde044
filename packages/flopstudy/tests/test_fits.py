"""Power laws (upstream), saturation and the compute-optimal frontier against hand-made points with known
answers (closed forms written out in each test). The downstream curve laws, their checks and crossovers:
test_curve_laws.py."""

import math

import flopmeter
import numpy as np
import pytest
from flopstudy import (
    FrontierPoint,
    compute_optimal_frontier,
    fit_saturation,
    fit_scaling_law,
    fit_upstream_laws,
)


def test_scaling_law_uses_the_one_power_law_of_the_project():
    # flopmeter.fit_power_law is the only least-squares power law; the bootstrapped law reports its numbers.
    x, y = np.array([1e12, 3e12, 1e13, 4e13]), np.array([9.0, 6.1, 4.2, 2.9])
    line, fit = flopmeter.fit_power_law(x, y), fit_scaling_law(x, y, n_boot=0)
    assert (fit.prefactor, fit.exponent, fit.r_squared) == (line.a, line.b, line.r_squared)


def test_power_law_recovers_exponent_prefactor_and_r2():
    x = np.geomspace(1e15, 1e19, 7)
    y = 3.0e3 * x**-0.12
    fit = fit_scaling_law(x, y, seed=0)
    assert fit.exponent == pytest.approx(-0.12, rel=1e-10)
    assert fit.prefactor == pytest.approx(3.0e3, rel=1e-8)
    assert fit.r_squared == pytest.approx(1.0)
    assert fit.predict(1e20) == pytest.approx(3.0e3 * 1e20**-0.12)
    lo, hi = fit.exponent_interval()
    assert lo == pytest.approx(-0.12, abs=1e-9) and hi == pytest.approx(-0.12, abs=1e-9)


def test_power_law_with_noise_r2_and_interval_cover_the_truth():
    rng = np.random.default_rng(3)
    x = np.repeat(np.geomspace(1e15, 1e19, 5), 3)
    log_y = math.log(80.0) - 0.05 * np.log(x / 1e15) + rng.normal(0, 0.01, x.size)
    y = np.exp(log_y)
    fit = fit_scaling_law(x, y, seed=1)
    # Independent reference: numpy's least-squares line in log-log and its R^2.
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    resid = np.log(y) - (intercept + slope * np.log(x))
    r2 = 1 - resid @ resid / np.sum((np.log(y) - np.log(y).mean()) ** 2)
    assert fit.exponent == pytest.approx(slope) and fit.r_squared == pytest.approx(r2)
    lo, hi = fit.exponent_interval()
    assert lo < -0.05 < hi and hi - lo < 0.01
    assert fit.extrapolation(3.2e19) == "3.2x beyond the largest measured budget (1e+19 FLOPs)"
    assert fit.extrapolation(1e17) is None


def test_power_law_rejects_bad_input():
    with pytest.raises(ValueError, match="expected at least 2 distinct values"):
        fit_scaling_law(np.array([1e15, 1e15]), np.array([50.0, 40.0]))
    with pytest.raises(ValueError, match="expected finite positive numbers"):
        fit_scaling_law(np.array([1e15, 1e16]), np.array([50.0, 0.0]))


def test_saturation_recovers_known_parameters():
    upstream = np.linspace(8.0, 60.0, 14)
    downstream = 0.5 * upstream**1.3 + 12.0
    fit = fit_saturation(upstream, downstream, seed=0)
    assert (fit.k, fit.a, fit.e_ir) == pytest.approx((0.5, 1.3, 12.0), rel=1e-5)
    assert fit.r_squared == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    noisy = fit_saturation(upstream, downstream + rng.normal(0, 0.3, upstream.size), seed=0)
    lo, hi = noisy.interval("e_ir")
    assert lo < 12.0 < hi and hi - lo < 6
    assert noisy.interval("a")[0] < 1.3 < noisy.interval("a")[1]


def test_saturation_keeps_e_ir_non_negative_and_needs_four_points():
    upstream = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    fit = fit_saturation(upstream, 2.0 * upstream, n_boot=0)  # a straight line through 0: e_IR = 0, a = 1
    assert fit.e_ir == pytest.approx(0.0, abs=1e-6) and fit.a == pytest.approx(1.0, rel=1e-4)
    with pytest.raises(ValueError, match="expected pairs, at least 4"):
        fit_saturation(upstream[:3], upstream[:3])


def test_compute_optimal_frontier_picks_the_best_size_per_budget():
    # Three sizes x three budgets; at each budget the lowest loss is known by construction.
    grid = {("s", 1e3): 4.0, ("s", 1e4): 3.5, ("s", 1e5): 3.3,
            ("m", 1e3): 4.4, ("m", 1e4): 3.2, ("m", 1e5): 2.8,
            ("l", 1e3): 5.0, ("l", 1e4): 3.6, ("l", 1e5): 2.5}
    params = {"s": 10, "m": 40, "l": 160}
    points = [FrontierPoint(b, params[b], int(f / (6 * params[b])), f, loss) for (b, f), loss in grid.items()]
    frontier = compute_optimal_frontier(points)
    assert [(p.backbone, p.flops) for p in frontier] == [("s", 1e3), ("m", 1e4), ("l", 1e5)]


def test_upstream_law_on_a_chinchilla_like_grid(make_row):
    # Loss L(N, D) = 1.7 + 400 N^-0.34 + 410 D^-0.28 with C = 6 N D; the compute-optimal N grows as
    # C^(0.28 / (0.34 + 0.28)) = C^0.452 (Hoffmann et al. 2022, eq. 4). The frontier over a fine grid of sizes
    # and budgets recovers that exponent up to the grid's resolution (1/6 decade in size); the budgets stay where
    # the optimal size lies inside the grid (N_opt = 1.3 (C/6)^0.452 is 1e7 at 1e16 FLOPs, 6e8 at 1e20).
    rows = []
    for n in np.geomspace(1e6, 1e10, 25):
        for c in np.geomspace(1e16, 1e20, 9):
            d = c / (6 * n)
            loss = 1.7 + 400 * n**-0.34 + 410 * d**-0.28
            rows.append(make_row(backbone=f"vit-{int(n)}", params=int(n), pretrain_steps=int(d),
                                 pretrain_flops=float(c), upstream_loss=float(loss)))
    (law,) = fit_upstream_laws(rows, n_boot=50)
    assert law.family == "vit"
    assert law.params_fit.exponent == pytest.approx(0.28 / 0.62, abs=0.02)
    assert law.steps_fit.exponent == pytest.approx(0.34 / 0.62, abs=0.02)
    assert len(law.frontier) == 9
    assert law.loss_fit.exponent < 0 and law.loss_fit.r_squared > 0.9

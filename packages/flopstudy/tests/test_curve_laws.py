"""Curve laws of score vs FLOPs: encoder observations, weighted fits against numpy references, the noise model by
hand, independent streams, extrapolation checks and the form rule, and crossovers in both directions. The
calibration of the intervals is in test_calibration.py."""

import math
import re

import numpy as np
import pytest
import scipy.stats
from flopstudy import (
    FORMS,
    EncoderPoint,
    NoiseModel,
    analyse,
    build_curves,
    check_form,
    checkable_forms,
    choose_form,
    estimate_noise,
    fit_crossover,
    fit_law,
    stream,
)
from flopstudy.fits.crossover import first_crossing


def test_encoder_points_use_confirm_seeds_else_explore_seeds(make_row):
    rows = [make_row(pretrain_flops=1e15, run_dir="a", seed=0, score=50.0, seed_role="explore"),
            make_row(pretrain_flops=1e15, run_dir="a", seed=1, score=40.0, seed_role="confirm"),
            make_row(pretrain_flops=1e15, run_dir="a", seed=2, score=42.0, seed_role="confirm"),
            make_row(pretrain_flops=1e15, run_dir="b", seed=0, score=45.0, seed_role="explore"),
            # No run directory and no role (an older table): one encoder per budget, every seed counts.
            make_row(pretrain_flops=1e16, seed=0, score=47.0), make_row(pretrain_flops=1e16, seed=1, score=49.0),
            # Without a run directory, a repeated pre-training (config.pretrain_seeds) is still its own encoder.
            make_row(pretrain_flops=1e16, seed=1, score=44.0, pretrain_seed=1)]
    (curve,), _, _ = build_curves(rows)
    assert [(p.flops, p.mean, p.n) for p in curve.encoders] == [(1e15, 41.0, 2), (1e15, 45.0, 1), (1e16, 48.0, 2),
                                                                (1e16, 44.0, 1)]


def test_power_law_is_a_weighted_line_in_log_error():
    points = [EncoderPoint(1e15, (40.0, 41.0, 39.5)), EncoderPoint(4e15, (45.0,)), EncoderPoint(1.6e16, (47.0,)),
              EncoderPoint(6.4e16, (52.0, 50.5))]
    noise = NoiseModel(seed_var=1.0, seed_df=3, encoder_var=0.5, residual_df=2)
    law = fit_law(points, "power", noise, n_boot=0, rng=stream(0))
    # Reference: numpy's weighted polyfit of log error on log FLOPs, weights 1/sd of log error (delta method).
    y = np.array([p.mean for p in points])
    n = np.array([p.n for p in points], np.float64)
    lx = np.log([p.flops for p in points]) - np.log(law.pivot)
    slope, intercept = np.polyfit(lx, np.log(100 - y), 1, w=(100 - y) / np.sqrt(0.5 + 1.0 / n))
    assert law.pivot == pytest.approx(math.sqrt(1e15 * 6.4e16))
    assert (law.exponent, law.prefactor) == pytest.approx((slope, math.exp(intercept)), rel=1e-10)
    assert law.predict(1e17) == pytest.approx(100 - math.exp(intercept + slope * math.log(1e17 / law.pivot)))
    assert law.extrapolation(3.2e17) == "5x beyond the largest measured budget (6.4e+16 FLOPs)"
    assert law.factor_outside(1e14) == pytest.approx(10.0) and law.factor_outside(1e16) == 1.0


def test_saturating_form_recovers_a_known_curve():
    flops = np.geomspace(1e15, 1e19, 5)
    truth = 70.0 - 40.0 * (flops / 1e15) ** -0.5
    points = [EncoderPoint(float(f), (float(s),)) for f, s in zip(flops, truth, strict=True)]
    law = fit_law(points, "saturating", NoiseModel(None, 0, 1.0, 0), n_boot=0, rng=stream(0))
    assert law.ceiling == pytest.approx(70.0, rel=1e-5) and law.exponent == pytest.approx(-0.5, rel=1e-4)
    assert law.predict(1e21) == pytest.approx(70.0 - 40.0 * 1e6**-0.5, abs=1e-3)
    with pytest.raises(ValueError, match="the saturating form needs 3"):
        fit_law(points[:2], "saturating", NoiseModel(None, 0, 1.0, 0), n_boot=0, rng=stream(0))


def test_noise_model_by_hand():
    a = [EncoderPoint(1.0, (40.0, 42.0)), EncoderPoint(2.0, (45.0,)), EncoderPoint(4.0, (47.0,))]
    b = [EncoderPoint(1.0, (30.0, 31.0, 35.0)), EncoderPoint(2.0, (38.0,))]
    fitted_a, fitted_b = [41.5, 45.5, 46.5], [32.0, 38.0]
    noise = estimate_noise([(a, fitted_a, 2), (b, fitted_b, 2)])
    # sigma^2: squared deviations from each encoder's mean, (1 + 1) and (4 + 1 + 9), over 1 + 2 df.
    within = (1.0 + 1.0) + ((30 - 32) ** 2 + (31 - 32) ** 2 + (35 - 32) ** 2)
    assert noise.seed_var == pytest.approx(within / 3) and noise.seed_df == 3
    # Only curve a has more budgets than parameters: residuals -0.5, -0.5, 0.5 (RSS 0.75) on 1 df; its 1/n are
    # 1/2, 1, 1, so tau^2 = 0.75 - sigma^2 * mean(1/n), floored at 0.
    assert noise.residual_df == 1 and noise.df == 1
    assert noise.encoder_var == pytest.approx(max(0.75 - within / 3 * (0.5 + 1 + 1) / 3, 0.0))
    assert noise.variance(np.array([1.0, 4.0])) == pytest.approx(noise.encoder_var + noise.seed_var / np.array([1, 4]))
    unknown = estimate_noise([(b, fitted_b, 2)])
    assert unknown.encoder_var is None and unknown.df == 2 and "seed variance only" in unknown.note


def test_streams_are_stable_and_independent_per_curve():
    draw = stream(0, "seg", "mae").random(3)
    assert np.array_equal(draw, stream(0, "seg", "mae").random(3))
    for other in (stream(1, "seg", "mae"), stream(0, "seg", "dino"), stream(0, "segm", "ae")):
        assert not np.allclose(draw, other.random(3))


def test_interval_follows_student_t_with_seed_and_encoder_variance():
    # Two budgets, one seed each: the power law passes through both points, so at their geometric middle it
    # predicts 100 - sqrt(e1 e2), whose variance (delta method) is V/4 (e2/e1 + e1/e2) with V = tau^2 + sigma^2.
    # The bootstrap widens it by Student's t with the model's df (4 here, from the seeds): a closed form to
    # compare with (tolerance: the log transform's skew, ~0.1, and the Monte-Carlo error, ~0.06).
    points = [EncoderPoint(1e15, (40.0,)), EncoderPoint(1e17, (50.0,))]
    noise = NoiseModel(seed_var=1.5, seed_df=4, encoder_var=None, residual_df=0)
    law = fit_law(points, "power", noise, n_boot=20000, rng=stream(0, "t"))
    t = scipy.stats.t.ppf(0.975, 4)
    half = t * math.sqrt(1.5 / 4 * (50 / 60 + 60 / 50))
    middle = 100 - math.sqrt(60.0 * 50.0)
    assert law.predict(1e16) == pytest.approx(middle)
    assert law.predict_interval(1e16) == pytest.approx((middle - half, middle + half), abs=0.2)
    normal = scipy.stats.norm.ppf(0.975) * half / t  # what ignoring the variance's uncertainty would give
    assert np.ptp(law.predict_interval(1e16)) > 2 * normal + 0.5
    wider = fit_law(points, "power", NoiseModel(1.5, 4, 3.0, 0), n_boot=20000, rng=stream(0, "t"))
    assert np.ptp(wider.predict_interval(1e16)) > np.ptp(law.predict_interval(1e16))


def test_checkable_forms_and_the_choice_rule():
    assert checkable_forms(2) == () and checkable_forms(3) == ("power",) and checkable_forms(4) == FORMS
    assert choose_form([]) == "power"


def test_held_out_check_by_hand(make_row):
    # 3 budgets: the power law through the first two predicts the third (closed form), with a prediction interval.
    points = [EncoderPoint(1e15, (40.0,)), EncoderPoint(1e16, (45.0,)), EncoderPoint(1e17, (52.0, 51.0))]
    noise = NoiseModel(seed_var=1.0, seed_df=10, encoder_var=0.5, residual_df=10)
    key = build_curves([make_row()])[0][0].key
    check = check_form(key, points, "power", noise, n_boot=2000, rng=stream(0))
    slope = math.log(55.0 / 60.0)  # per decade
    assert check.predicted == pytest.approx(100 - 55.0 * math.exp(slope), rel=1e-9)
    assert check.observed == 51.5 and check.error == pytest.approx(51.5 - check.predicted)
    lo, hi = check.interval
    assert lo < check.predicted < hi and check.inside == (lo <= 51.5 <= hi)
    assert set(check.to_json()) >= {"task", "method", "variant", "backbone", "pretrain_dataset", "form",
                                    "held_out_flops", "predicted", "interval", "observed", "inside"}


def test_a_saturating_curve_is_chosen_by_held_out_error(make_row):
    rows = []
    for k, flops in enumerate(np.geomspace(1e15, 1e19, 5)):
        for seed, wobble in enumerate((-0.1, 0.1)):
            rows.append(make_row(pretrain_flops=float(flops), pretrain_steps=10**k, seed=seed, run_dir=f"r{k}",
                                 score=70.0 - 40.0 * (flops / 1e15) ** -0.5 + wobble))
    fit = next(iter(analyse(rows, n_boot=200).fits.values()))
    power, saturating = fit.checks
    assert (power.form, saturating.form) == ("power", "saturating")
    assert abs(saturating.error) < 0.5 < abs(power.error)
    assert fit.law.form == "saturating" and fit.check is saturating and saturating.chosen and saturating.inside
    assert fit.law.ceiling == pytest.approx(70.0, abs=0.2)


def _crossing_rows(make_row, laws):
    """Rows of backbones {name: (params, A, b)} with error A (F/1e15)^b at 5 budgets, 2 seeds at +-0.2."""
    rows = []
    for backbone, (params, a, b) in laws.items():
        for k, flops in enumerate(np.geomspace(1e15, 1e19, 5)):
            for seed, wobble in enumerate((-0.2, 0.2)):
                rows.append(make_row(backbone=backbone, params=params, pretrain_flops=float(flops),
                                     pretrain_steps=10**k, seed=seed, run_dir=f"{backbone}{k}",
                                     score=100 - a * (flops / 1e15) ** b + wobble))
    return rows


@pytest.mark.parametrize(("laws", "leader"), [
    # The usual case: the larger model (more parameters) trails at low compute and its error falls faster.
    ({"vit-zzz": (10, 50.0, -0.1), "vit-aaa": (30, 80.0, -0.2)}, "vit-aaa"),
    # The larger model leads at low compute and is overtaken: once reported as "wins throughout".
    ({"vit-zzz": (10, 80.0, -0.2), "vit-aaa": (30, 50.0, -0.1)}, "vit-zzz"),
])
def test_crossover_inside_the_range_in_either_direction(make_row, laws, leader):
    # The errors meet where (F/1e15)^0.1 = 80/50: F = 1e15 * 1.6^10 = 1.1e17 (names sort against the sizes).
    truth = 1e15 * 1.6**10
    analysis = analyse(_crossing_rows(make_row, laws), n_boot=400)
    (cross,) = analysis.crossovers
    assert (cross.smaller, cross.larger) == ("vit-zzz", "vit-aaa") and cross.outcome == "crossover"
    assert cross.p_cross > 0.95 and cross.leader_after == leader
    assert cross.flops == pytest.approx(truth, rel=0.1) and cross.interval[0] < truth < cross.interval[1]
    other = "vit-zzz" if leader == "vit-aaa" else "vit-aaa"
    assert re.match(rf"{leader} overtakes {other} at 1\.\d+e\+17 FLOPs \(95% interval ", cross.sentence())
    assert cross.to_json()["p_cross"] == cross.p_cross and cross.to_json()["task"] == "seg"


def test_no_crossover_in_range_only_when_resamples_rarely_cross(make_row):
    # e_L = 80 (F/1e15)^-0.12 vs e_B = 50 (F/1e15)^-0.1 meet at 1e15 * 1.6^50 = 1.6e25, far beyond 1e19.
    analysis = analyse(_crossing_rows(make_row, {"vit-b16": (10, 50.0, -0.1), "vit-l16": (30, 80.0, -0.12)}),
                       n_boot=400)
    (cross,) = analysis.crossovers
    assert cross.p_cross < 0.05 and cross.outcome == "smaller wins throughout"
    assert cross.flops is None and cross.interval is None
    assert cross.sentence().startswith("no crossover in the measured range 1e+15-1e+19 FLOPs: vit-b16 wins "
                                       "throughout; the curves cross in the range in ")


def test_first_crossing_interpolates_the_sign_change():
    grid = np.linspace(0.0, 10.0, 11)
    diff = np.stack([grid - 3.25, 7.5 - grid, grid + 1.0, np.minimum(grid - 2.5, 8.5 - grid)])
    roots = first_crossing(grid, diff)
    assert roots[:2] == pytest.approx([3.25, 7.5]) and np.isnan(roots[2]) and roots[3] == pytest.approx(2.5)


def test_crossover_without_resamples_uses_the_fits():
    flops = np.geomspace(1e15, 1e19, 5)
    even = NoiseModel(None, 0, None, 0)

    def law(a, b):
        points = [EncoderPoint(float(f), (100 - a * (f / 1e15) ** b,)) for f in flops]
        return fit_law(points, "power", even, n_boot=0, rng=stream(0))

    cross = fit_crossover(law(50.0, -0.1), law(80.0, -0.2), names=("b", "l"))
    assert cross.outcome == "crossover" and cross.p_cross is None
    assert cross.flops == pytest.approx(1e15 * 1.6**10, rel=1e-3)


def test_bootstrap_refits_of_the_saturating_form_match_scipy():
    # The bootstrap profiles c on a grid (closed-form weighted least squares for s_max and A at each c); scipy's
    # bounded least squares on the same rows is the reference: the profile's cost is within the grid's reach.
    from flopstudy.fits.curve_laws import _saturating, _saturating_profile

    rng = np.random.default_rng(0)
    lx = np.log(np.geomspace(1e15, 1e19, 5) / 1e17)
    var = np.array([1.0, 0.5, 1.0, 1.0, 0.4])
    rows = 70.0 - 20.0 * np.exp(0.4 * -lx) + rng.normal(0, 1.0, (8, 5))
    rows[0] = 99.0 + 0.4 * lx  # the s_max <= 100 bound binds
    profile = _saturating_profile(lx, rows, var)
    for row, theta in zip(rows, profile, strict=True):
        exact = _saturating(lx, row, var)

        def cost(t, row=row):
            return float((((t[0] - t[1] * np.exp(-t[2] * lx)) - row) ** 2 / var).sum())

        assert theta[0] <= 100.0 and theta[1] >= 0.0
        assert cost(theta) <= cost(exact) * 1.01 + 1e-6


def test_a_crossover_in_a_minority_of_resamples_is_worded_as_possible():
    from flopstudy import Crossover

    cross = Crossover(smaller="vit-b16", larger="vit-l16", outcome="possible crossover", p_cross=0.2, flops=3e17,
                      interval=(1e17, 9e17), measured_range=(1e15, 1e19), leader_after="vit-l16")
    assert cross.sentence() == ("vit-l16 may overtake vit-b16 at 3e+17 FLOPs (95% interval 1e+17-9e+17); the curves "
                                "cross in the range in 20% of resamples")


def test_a_curve_that_cannot_be_fitted_says_why(make_row):
    rows = [make_row(pretrain_flops=1e15, score=100.0), make_row(pretrain_flops=1e16, score=90.0),
            make_row(method="dino", pretrain_flops=1e15, score=30.0)]
    fits = analyse(rows, n_boot=0).fits
    assert [(f.key.method, f.law, f.note) for f in fits.values()] == [
        ("dino", None, "one budget measured: no law"), ("mae", None, "a score of 100%: error 0 has no logarithm")]

"""The planner: budget syntax, conversions to FLOPs, the fitted curves' choice and the extrapolation warning."""

import re

import numpy as np
import pytest
from flopstudy import analyse, budget_flops, parse_budget, plan, throughput_model


@pytest.mark.parametrize(("text", "amount", "unit"), [("3e18", 3e18, "flops"), ("3e18FLOPs", 3e18, "flops"),
                                                      ("100h", 100.0, "device-hours"), ("2.5kgCO2e", 2.5, "kgCO2e")])
def test_budget_syntax(text, amount, unit):
    budget = parse_budget(text)
    assert (budget.amount, budget.unit) == (amount, unit)


@pytest.mark.parametrize("text", ["3e18x", "100 hours", "-5h", "0", "kgco2e", ""])
def test_bad_budget_is_rejected_with_the_flag(text):
    with pytest.raises(ValueError, match=r"--budget .*expected (FLOPs \(3e18 or 3e18flops\)|a positive)"):
        parse_budget(text)


def test_hours_and_co2_budgets_convert_through_the_peak_model():
    tp = throughput_model([], hardware_name="tpu-v3", chips=32, mfu=0.5)
    # 64 device-hours on 32 chips = 2 h wall; TPUv3 peak 123 TFLOP/s at 50% MFU.
    assert budget_flops(parse_budget("64h"), tp, flops_per_step=1e15) == pytest.approx(2 * 3600 * 32 * 123e12 * 0.5)
    # 1 kgCO2e at 267 g/kWh = 3.745 kWh; / (32 chips x 283 W) = 0.4136 h of wall time.
    hours = 1000 / 267 * 1000 / (32 * 283)
    assert budget_flops(parse_budget("1kgco2e"), tp, flops_per_step=1e15) == pytest.approx(
        hours * 3600 * 32 * 123e12 * 0.5)
    assert "assumed MFU of 50%" in tp.describe()


def test_fitted_throughput_is_used_when_runs_were_measured_on_that_hardware(make_row):
    # steps/s = 2e7 * (FLOPs/step)^-0.5 measured on 8 x a100-sxm4.
    rows = [make_row(hardware="a100-sxm4", num_devices=8, flops_per_step=f, pretrain_steps=1000,
                     pretrain_flops=1000 * f, pretrain_seconds=1000 / (2e7 * f**-0.5), run_dir=f"r{i}")
            for i, f in enumerate([1e12, 4e12, 1.6e13])]
    tp = throughput_model(rows, hardware_name="a100-sxm4", chips=8)
    assert tp.fit.b == pytest.approx(-0.5) and tp.fit.a == pytest.approx(2e7)
    assert tp.hours(1e14, 3600.0) == pytest.approx(3600 / (2e7 * 1e14**-0.5) / 3600)
    assert "fitted steps/s" in tp.describe()
    with pytest.raises(ValueError, match="hardware='tpu-v9' is unknown"):
        throughput_model(rows, hardware_name="tpu-v9")


def _sweep(make_row):
    """Two methods at 3 budgets (1e15-1e17 FLOPs): mae error 50 (F/1e15)^-0.1, simclr 60 (F/1e15)^-0.05."""
    rows = [make_row(method="scratch", pretrain_dataset="", pretrain_steps=0, pretrain_flops=0.0, score=20.0)]
    for method, (a, b) in {"mae": (50.0, -0.1), "simclr": (60.0, -0.05)}.items():
        for k, flops in enumerate([1e15, 1e16, 1e17]):
            for seed, wobble in enumerate([-0.2, 0.0, 0.2]):
                rows.append(make_row(method=method, pretrain_flops=flops, pretrain_steps=10**k * 100, seed=seed,
                                     flops_per_step=flops / (10**k * 100),
                                     score=100 - a * (flops / 1e15) ** b + wobble))
    return rows


def test_plan_picks_the_best_fitted_curve_with_interval(make_row):
    result = plan(analyse(_sweep(make_row), n_boot=200), parse_budget("1e16"), hardware_name="tpu-v3", chips=32)
    best = result.best
    assert (best.key.method, best.key.backbone) == ("mae", "vit-b16")
    assert best.score == pytest.approx(100 - 50 * 10**-0.1, abs=0.05)
    assert best.interval[0] < best.score < best.interval[1]
    assert best.steps == pytest.approx(1000)
    assert best.extrapolation is None and result.warnings == ()
    # 1e16 FLOPs at 32 x 123 TFLOP/s x 40% MFU, 283 W per chip, 267 gCO2e/kWh.
    hours = 1e16 / (32 * 123e12 * 0.4) / 3600
    assert best.cost.hours == pytest.approx(hours)
    assert best.cost.kg_co2e == pytest.approx(32 * 283 * hours / 1000 * 267 / 1000)
    assert "best: pre-train mae vit-b16 on i1k for ~1,000 steps" in result.describe()


def test_plan_warns_with_the_distance_beyond_the_measured_range(make_row):
    result = plan(analyse(_sweep(make_row), n_boot=50), parse_budget("3.2e17"))
    assert result.best.extrapolation == "3.2x beyond the largest measured budget (1e+17 FLOPs)"
    assert any("3.2x beyond the largest measured budget" in w for w in result.warnings)
    assert "warning: extrapolation: 3.2x beyond" in result.describe()
    below = plan(analyse(_sweep(make_row), n_boot=50), parse_budget("2.5e14"))
    assert any("4x below the smallest measured budget of any run (1e+15 FLOPs)" in w for w in below.warnings)


def test_plan_says_when_scratch_wins_and_rejects_unknown_choices(make_row):
    rows = [make_row(method="scratch", pretrain_dataset="", pretrain_steps=0, pretrain_flops=0.0, score=90.0)]
    rows += [make_row(pretrain_flops=f, score=s) for f, s in ((1e15, 40.0), (1e16, 45.0))]
    result = plan(analyse(rows, n_boot=0), parse_budget("1e16"))
    assert any("no pre-training is predicted to beat training from scratch (90.0%)" in w for w in result.warnings)
    with pytest.raises(ValueError, match=r"--task 'det': expected one of \['seg'\]"):
        plan(analyse(rows, n_boot=0), parse_budget("1e16"), task="det")
    with pytest.raises(ValueError, match=r"--pretrain-dataset 'jft': expected one of \['i1k'\]"):
        plan(analyse(rows, n_boot=0), parse_budget("1e16"), pretrain_dataset="jft")
    one_budget = [make_row(pretrain_flops=1e15, score=40.0)]
    with pytest.raises(ValueError, match="no curve of task 'seg' can be fitted"):
        plan(analyse(one_budget, n_boot=0), parse_budget("1e16"))


def test_hours_budget_buys_more_flops_for_a_cheaper_step_under_a_fitted_model(make_row):
    rows = _sweep(make_row)
    rows += [make_row(method="m", hardware="a100-sxm4", num_devices=8, flops_per_step=f, pretrain_steps=10,
                      pretrain_flops=10 * f, pretrain_seconds=10 / (1e8 * f**-0.6), status="failed", score=None,
                      run_dir=f"t{i}") for i, f in enumerate([1e12, 1e13])]
    result = plan(analyse(rows, n_boot=0), parse_budget("8h"), hardware_name="a100-sxm4", chips=8)
    for option in result.options:
        per_step = option.flops / option.steps
        expected = 3600 * 1e8 * per_step**-0.6 * per_step  # 1 h wall on 8 chips at the fitted steps/s
        assert option.flops == pytest.approx(expected)
    assert np.isfinite(result.best.score)


def test_plan_needs_whole_program_flops(make_row):
    rows = [make_row(num_devices=8, pretrain_flops=f, score=s) for f, s in ((1e15, 40.0), (1e16, 45.0))]
    with pytest.raises(ValueError, match="analysis.convention='per-device': the planner needs whole-program FLOPs"):
        plan(analyse(rows, convention="per-device", n_boot=0), parse_budget("1e16"))


def test_plan_says_how_far_beyond_the_validated_budget_and_refuses_past_10x(make_row):
    analysis = analyse(_sweep(make_row), n_boot=200)
    within = plan(analysis, parse_budget("1e16"))
    check = within.best.check
    # The power law through the seed means at 1e15 and 1e16 (the wobbles cancel) predicts 100 - 50 * 100^-0.1 at
    # 1e17, exactly what was observed there.
    assert (check.form, check.held_out_flops, check.chosen) == ("power", 1e17, True)
    assert check.predicted == pytest.approx(100 - 50 * 100**-0.1) and check.error == pytest.approx(0, abs=1e-9)
    assert re.search(r"validation: within the validated range \(up to 1e\+17 FLOPs, where the power law fitted "
                     r"without 1e\+17 FLOPs missed it by [+-]0\.0 points, inside its interval\)", within.describe())
    far = plan(analysis, parse_budget("5e17"))
    assert "validation: 5x beyond the last validated budget (1e+17 FLOPs), where the power law" in far.describe()
    for budget, where in (("2e18", "20x beyond the largest"), ("5e13", "20x below the smallest")):
        with pytest.raises(ValueError, match=rf"--budget {budget[0]}e\+{budget[-2:]} FLOPs: mae vit-b16 would be "
                           rf"extrapolated {where} measured budget .*, more than 10x outside its measured range; "
                           "pass --allow-extrapolation"):
            plan(analysis, parse_budget(budget))
    allowed = plan(analysis, parse_budget("2e18"), allow_extrapolation=True)
    assert allowed.best.factor_outside == pytest.approx(20.0) and allowed.best.extrapolation.startswith("20x beyond")
    # Exactly 10x is still ranked (the summary's "at budget" lines go up to 10x the largest budget).
    assert plan(analysis, parse_budget("1e18")).best.factor_outside == pytest.approx(10.0)


def test_a_curve_of_two_budgets_is_not_validated(make_row):
    rows = [make_row(pretrain_flops=f, score=s) for f, s in ((1e15, 40.0), (1e16, 45.0))]
    result = plan(analyse(rows, n_boot=0), parse_budget("1e16"))
    assert result.best.check is None
    assert "validation: not validated: the curve has fewer than 3 budgets" in result.describe()


def test_summary_budget_lines_reach_10x_with_their_validation(make_row):
    from flopstudy import summary_lines

    lines = [line for line in summary_lines(analyse(_sweep(make_row), n_boot=100)) if ", at " in line]
    assert [line.split(":")[0] for line in lines] == ["seg, at 1e+15 FLOPs", "seg, at 1e+16 FLOPs",
                                                      "seg, at 1e+17 FLOPs", "seg, at 1e+18 FLOPs"]
    assert lines[1].endswith("[within its measured range].")
    assert ("[an extrapolation: 10x beyond the largest measured budget (1e+17 FLOPs); 10x beyond the last validated "
            "budget (1e+17 FLOPs), where the power law fitted without 1e+17 FLOPs missed it by") in lines[3]

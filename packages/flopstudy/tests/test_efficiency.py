"""The efficiency front over all points (scratch at 0 FLOPs included), missing FLOPs, seed spread, reach."""

import pytest
from flopstudy import analyse, build_curves, efficiency_front, flops_to_reach


def test_front_includes_scratch_and_never_stars_a_point_below_it(make_row):
    rows = [
        make_row(method="scratch", pretrain_dataset="", pretrain_steps=0, pretrain_flops=0.0, score=8.0),
        make_row(method="supervised", pretrain_flops=1e12, score=6.9),  # below scratch: never efficient
        make_row(method="mae", pretrain_flops=2e12, score=10.0),
        make_row(method="simclr", pretrain_flops=3e12, score=9.0),      # dearer and worse than mae
        make_row(method="clip", pretrain_flops=4e12, score=12.0),
        make_row(method="dino", pretrain_flops=None, score=50.0, run_dir="runs/dino"),  # no FLOP count
    ]
    curves, baselines, problems = build_curves(rows)
    front = efficiency_front(curves, baselines)
    assert [(p.label, p.flops) for p in front] == [("scratch vit-b16", 0.0), ("mae vit-b16", 2e12),
                                                   ("clip vit-b16", 4e12)]
    assert "dino" not in {c.key.method for c in curves}
    assert [str(p) for p in problems] == ["runs/dino: left out of the FLOP axis: no FLOP count for dino vit-b16 "
                                          "on i1k -> seg, 100 steps, seed 0 (runs/dino)"]


def test_front_uses_seed_medians_and_curves_keep_backbones_and_datasets_apart(make_row):
    rows = [make_row(seed=s, score=v) for s, v in enumerate([10.0, 14.0, 11.0])]
    rows += [make_row(backbone="vit-l16", score=12.0), make_row(pretrain_dataset="jft", score=13.0)]
    analysis = analyse(rows, n_boot=0)
    curves = {(c.key.backbone, c.key.pretrain_dataset): c for p in analysis.panels for c in p.curves}
    assert set(curves) == {("vit-b16", "i1k"), ("vit-l16", "i1k"), ("vit-b16", "jft")}
    point = curves[("vit-b16", "i1k")].points[0]
    assert (point.median, point.low, point.high, point.seeds) == (11.0, 10.0, 14.0, 3)
    i1k = next(p for p in analysis.panels if p.pretrain_dataset == "i1k")
    assert [(f.label, f.score) for f in i1k.front] == [("mae vit-l16", 12.0)]


def test_flops_to_reach_interpolates_in_log_flops(make_row):
    rows = [make_row(pretrain_flops=1e12, score=10.0), make_row(pretrain_flops=1e14, score=30.0)]
    (curve,), _, _ = build_curves(rows)
    assert flops_to_reach(curve, 20.0).flops == pytest.approx(1e13)  # half way in log FLOPs
    first = flops_to_reach(curve, 5.0)
    assert first.flops == 1e12 and first.at_first_point and first.describe() == "<= 1e+12"
    assert flops_to_reach(curve, 31.0).describe() == "not reached"
    analysis = analyse(rows, reach_fraction=0.5, n_boot=0)
    (reach,) = analysis.reach
    assert reach.target == 15.0 and reach.flops == pytest.approx(10 ** 12.5)


def test_a_pretrained_row_at_zero_flops_is_left_out_not_merged_into_scratch(make_row):
    rows = [
        make_row(method="scratch", pretrain_dataset="", pretrain_steps=0, pretrain_flops=0.0, score=8.0),
        make_row(method="mae", pretrain_steps=0, pretrain_flops=0.0, score=30.0, run_dir="runs/mae-0"),
        make_row(method="mae", pretrain_flops=2e12, score=10.0),
    ]
    assert [r.is_scratch for r in rows] == [True, False, False]
    curves, baselines, problems = build_curves(rows)
    assert [(b.backbone, b.point.median, b.point.seeds) for b in baselines] == [("vit-b16", 8.0, 1)]
    assert [p.flops for c in curves for p in c.points] == [2e12]
    assert [str(p) for p in problems] == [
        "runs/mae-0: left out: pretrain_flops=0 for the pre-trained method 'mae' (mae vit-b16 on i1k -> seg, 0 "
        "steps, seed 0 (runs/mae-0)); 0 FLOPs is for method 'scratch' only, so this row is not merged into the "
        "scratch baseline"]
    analysis = analyse(rows, n_boot=0)
    assert [f.score for p in analysis.panels for f in p.front] == [8.0, 10.0]  # not the 30% at "0 FLOPs"
    assert any("pretrain_flops=0 for the pre-trained method 'mae'" in str(p) for p in analysis.problems)


def test_predicted_scores_and_intervals_stay_inside_the_metrics_range(make_row):
    import re

    import numpy as np
    from flopstudy import summary_lines

    # scores that fall with FLOPs: the power law (error = A * F ** b, b > 0) extrapolated far predicts errors above
    # 100% (negative scores); what the analysis reports stays inside the metric's range
    rows = [make_row(pretrain_flops=f, score=s, seed=k, run_dir=f"runs/{k}") for k, (f, s) in enumerate(
        [(1e12, 50.0), (1e13, 30.0), (1e14, 10.0)])]
    fit = next(iter(analyse(rows, n_boot=200, seed=0).fits.values()))
    raw = fit.law.predict_interval(1e200)
    assert raw is not None and raw[0] < 0  # the raw law leaves the range
    for flops in np.geomspace(1e12, 1e300, 30):
        assert 0.0 <= fit.score(float(flops)) <= 100.0
        low, high = fit.score_interval(float(flops))
        assert 0.0 <= low <= high <= 100.0
    # the campaign's case: one point at 1e300 FLOPs stretches the fitted range; no interval outside 0-100 is printed
    for extra in ([], [make_row(pretrain_flops=1e300, score=0.5, seed=3, run_dir="runs/3")]):
        text = " ".join(summary_lines(analyse(rows + extra, n_boot=200, seed=0)))
        intervals = [tuple(map(float, m)) for m in re.findall(r"95% interval (-?[\d.]+)-(-?[\d.]+)", text)]
        assert all(0.0 <= a <= b <= 100.0 for a, b in intervals)
        assert intervals or extra

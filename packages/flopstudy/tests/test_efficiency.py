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

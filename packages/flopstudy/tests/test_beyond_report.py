"""Layer-wise transfer and MAE pre-pretraining in the report: read back from the table (and the second stages'
loss curves from their run folders), drawn and tabulated."""

import json

import flopstudy
import pytest
from flopstudy.analysis.layer_transfer import best_layer_trend, layer_curves
from flopstudy.analysis.prepretrain import chain_series
from flopstudy.report.writer import ReportOptions, write_report


def _row(**fields):
    return flopstudy.ResultRow.from_record(
        {"method": "supervised", "variant": "", "backbone": "vit-test", "pretrain_dataset": "objects",
         "pretrain_steps": 100, "pretrain_flops": 1e12, "task": "seg", "seed": 0, "score": 40.0, "status": "done",
         "score_metric": "mIoU", "flops_per_step": 1e10} | fields)


def test_layer_curves_and_the_best_layer_trend():
    rows = [_row(task="probe", method=m, pretrain_flops=f, upstream_accuracy=acc, layer_mious=mious, seed=seed)
            for m, f, acc, mious in (("mae", 1e12, 40.0, "10 30 20"), ("mae", 4e12, 60.0, "10 20 35"),
                                     ("simclr", 1e12, 50.0, "12 25 22"))
            for seed in (0, 1)]  # one curve per run, whatever the seed count
    rows.append(_row(task="seg"))  # no per-layer scores: not a layer curve
    curves = layer_curves(rows)
    assert [(c.method, c.pretrain_flops, c.best_layer) for c in curves] == [("mae", 1e12, 1), ("mae", 4e12, 2),
                                                                            ("simclr", 1e12, 1)]
    assert curves[1].depths == pytest.approx((1 / 3, 2 / 3, 1.0)) and curves[1].best_depth == 1.0
    intercept, slope = best_layer_trend(curves)  # best depths 2/3 at 40 and 50 %, 1 at 60 %: by hand
    assert slope == pytest.approx(1 / 60) and intercept == pytest.approx(7 / 9 - 50 / 60)


def _chain_rows(tmp_path):
    rows = []
    for first, first_flops, start in (("", None, 3.0), ("mae", 5e11, 2.0)):
        for steps in (100, 200):
            run = tmp_path / f"{first or 'plain'}-{steps}"
            (run / "pretrain").mkdir(parents=True)
            losses = [{"step": s, "loss": start / s} for s in (50, 100, 150, 200) if s <= steps]
            (run / "pretrain" / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in losses) + "\n")
            rows.append(_row(pretrain_steps=steps, pretrain_flops=steps * 1e10 + (first_flops or 0),
                             prepretrain_method=first or None, prepretrain_steps=50 if first else None,
                             prepretrain_flops=first_flops, score=30.0 + steps / 10 + (5 if first else 0),
                             run_dir=str(run), variant="after mae 50 steps" if first else ""))
    return rows


def test_chain_series_put_both_stages_on_both_axes(tmp_path):
    series = chain_series(_chain_rows(tmp_path) + [_row(method="simclr")])  # no chain: left out
    assert [(s.first_method, s.first_flops) for s in series] == [("", 0.0), ("mae", 5e11)]
    plain, chained = series
    assert chained.scores["seg"] == ((1e12, 45.0), (2e12, 55.0)) and plain.scores["seg"] == ((1e12, 40.0),
                                                                                             (2e12, 50.0))
    assert chained.loss == ((5e11, 0.04), (1e12, 0.02), (1.5e12, 2.0 / 150), (2e12, 0.01))  # the longest run


def test_report_draws_and_tabulates_them(tmp_path):
    rows = _chain_rows(tmp_path) + [
        _row(task="probe", method=m, pretrain_flops=f, upstream_accuracy=a, layer_mious=x, run_dir=None)
        for m, f, a, x in (("mae", 1e12, 40.0, "10 30 20"), ("mae", 4e12, 60.0, "10 20 35"))]
    report = write_report(flopstudy.LoadedResults(tuple(rows), (), ("test",)), tmp_path / "report",
                          ReportOptions(n_boot=20))
    assert {"layer_transfer.png", "prepretrain.png"} <= set(report["figures"])
    titles = [t["title"] for t in report["tables"]]
    assert any(t.startswith("Layer-wise transfer") for t in titles)
    assert any(t.startswith("MAE pre-pretraining") for t in titles)
    assert any("scores 55.0% vs 50.0% without, at 2e+12 second-stage FLOPs (2.5e+12 in total)" in line
               for line in report["summary"])
    assert any(line.startswith("Layer-wise transfer: the best probed layer moves deeper") for line in report["summary"])

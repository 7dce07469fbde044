"""tools/report.py: joins fine-tuning results, marks the Pareto front, writes JSON/Markdown/PNG."""

import json

import pytest
import report  # tools/report.py (tools/ is on sys.path via tests/conftest.py)
from runloop import EncoderInfo, FinetuneResult


def _result(path, kind, method, flops, miou, finetune_flops=1e9):
    encoder = EncoderInfo(kind=kind, method=method, model="vit-test", pretrain_dataset="fmnist_objects",
                          pretrain_steps=10, pretrain_flops=flops, pretrain_kg_co2e=1e-6)
    FinetuneResult(encoder=encoder, dataset="fmnist_scenes", miou=miou, aacc=0.9, iou=[miou], steps=3,
                   finetune_flops=finetune_flops, finetune_flops_per_step=finetune_flops / 3,
                   finetune_flops_all_runs=finetune_flops, finetune_macs_per_step=finetune_flops / 6, warmup_steps=1,
                   batch_size=4, image_size=32, lr=1e-3, wd=0.05, seeds=[0], per_seed_miou=[miou],
                   eval_mode="center_crop", eval_split="test", num_classes=1).write(path / "result.json")


def test_report_front_table_and_png(tmp_path):
    _result(tmp_path / "a", "run", "mae", 1e12, 0.30)
    _result(tmp_path / "b", "run", "simclr", 2e12, 0.25)  # dominated by a (dearer and worse)
    _result(tmp_path / "c", "run", "supervised", 4e12, 0.40)
    _result(tmp_path / "d", "scratch", None, 0.0, 0.20)
    out = tmp_path / "report"
    rep = report.main([str(tmp_path), "--out", str(out)])
    front = {r["method"] for r in rep["rows"] if r["on_front"]}
    assert front == {"mae", "supervised"}
    assert rep["scratch_miou"] == pytest.approx(0.20)
    saved = json.loads((out / "report.json").read_text())
    assert [r["method"] for r in saved["rows"] if r["on_front"]] == [r["method"] for r in rep["rows"] if r["on_front"]]
    table = (out / "report.md").read_text()
    assert "| mae |" in table and "30.00" in table
    png = (out / "accuracy_vs_flops.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_total_flops_axis_moves_the_front(tmp_path):
    # With pre-training FLOPs only, a is cheaper; counting a's large fine-tune cost makes b the cheaper one.
    _result(tmp_path / "a", "run", "mae", 1e12, 0.30, finetune_flops=1e13)
    _result(tmp_path / "b", "run", "simclr", 2e12, 0.25, finetune_flops=1e9)
    rows = report.main([str(tmp_path), "--out", str(tmp_path / "r"), "--x", "total"])["rows"]
    assert {r["method"] for r in rows if r["on_front"]} == {"mae", "simclr"}
    rows = report.main([str(tmp_path), "--out", str(tmp_path / "r2")])["rows"]
    assert {r["method"] for r in rows if r["on_front"]} == {"mae"}


def test_report_names_bad_file(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "result.json").write_text("{}")
    with pytest.raises(SystemExit, match=r"x/result.json is not a valid fine-tuning result \(missing fields"):
        report.main([str(tmp_path), "--out", str(tmp_path / "r")])
    _result(tmp_path / "y", "run", "mae", 1e12, 0.3)
    data = json.loads((tmp_path / "y" / "result.json").read_text())
    (tmp_path / "x" / "result.json").write_text(json.dumps({**data, "miou": 5.0}))  # a percentage, not a fraction
    with pytest.raises(SystemExit, match=r"x/result.json is not a valid fine-tuning result \(miou=5.0"):
        report.main([str(tmp_path), "--out", str(tmp_path / "r")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no result.json"):
        report.main([str(tmp_path / "empty"), "--out", str(tmp_path / "r")])
    with pytest.raises(SystemExit, match="does not exist"):
        report.main([str(tmp_path / "missing"), "--out", str(tmp_path / "r")])

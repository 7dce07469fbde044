"""`make demo` end to end at a tiny size: the demo sweep (pre-training, scratch, segmentation transfer, extra
seeds for the best point) and its report, through tools/demo.py."""

import csv
import json
from pathlib import Path

import pytest
from flopstudy.cli import demo

FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
TINY = ["--workers", "0", "--config.methods=('supervised',)", "--config.datasets=('fmnist_objects',)",
        "--config.budgets=(2,)", "--config.budget_unit=steps", "--config.batch=8", "--config.knn_bank=0",
        "--config.extra_seeds=2",
        "--config.tasks.segmentation.steps=2", "--config.tasks.segmentation.batch=4",
        "--config.build_datasets={'fmnist_objects': {'num_examples': 64, 'image_size': 32}, "
        "'fmnist_scenes': {'num_examples': 48, 'image_size': 32}}"]


@pytest.mark.slow
@pytest.mark.skipif(not FMNIST.exists(), reason="Fashion-MNIST (Debian dataset-fashion-mnist) is not installed")
def test_demo_sweep_runs_end_to_end_and_reports(tmp_path, capsys):
    out = tmp_path / "demo"
    assert demo.main(["--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report' / 'report.html'}" in printed
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    # scratch and the one pre-trained point are each the best of their group: both get seeds 0 and 1
    assert sorted((r["method"], r["seed"]) for r in rows) == [("scratch", "0"), ("scratch", "1"),
                                                             ("supervised", "0"), ("supervised", "1")]
    run = next(r for r in rows if r["method"] == "supervised")
    assert float(run["flops_per_step"]) > 0
    assert float(run["pretrain_flops"]) == pytest.approx(2 * float(run["flops_per_step"]))
    assert all(r["status"] == "done" and 0.0 <= float(r["score"]) <= 100.0 for r in rows)
    # the demo's fine-tuning recipe reaches segtransfer: 56 px, no colour jitter
    configs = [json.loads(p.read_text())["finetune"] for p in out.glob("runs/*/tasks/*/runs/*/config.json")]
    assert len(configs) == 4 and {(c["image_size"], c["photometric"]) for c in configs} == {(56, "none")}
    # the summary's first verdict: pre-trained vs scratch against the seed range (two seeds on each side here)
    assert "- fmnist_scenes segmentation, pre-trained vs scratch (" in printed
    assert "on the 1 point with seeds: " in printed
    html = (out / "report" / "report.html").read_text()
    assert "<img" in html and "http://" not in html and "https://" not in html
    assert (out / "report" / "accuracy_vs_flops.png").read_bytes()[:4] == b"\x89PNG"
    # a second call finds every stage done and only rewrites the report
    assert demo.main(["--out", str(out), *TINY]) == 0
    assert "runs done" in capsys.readouterr().out

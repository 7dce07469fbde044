"""`make demo` end to end at a tiny size: pre-train, fine-tune, scratch baseline, report."""

import json
from pathlib import Path

import pytest
from flopstudy.cli import demo

FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


@pytest.mark.slow
@pytest.mark.skipif(not FMNIST.exists(), reason="Fashion-MNIST (Debian dataset-fashion-mnist) is not installed")
def test_demo_runs_end_to_end_and_reports(tmp_path, monkeypatch):
    # The demo builds fmnist_objects at its default size on first use; keep it small and out of the repo.
    import flopdata

    out = tmp_path / "demo"
    flopdata.build("fmnist_objects", data_dir=out / "data", num_examples=256)
    assert demo.main(["--out", str(out), "--methods", "mae", "--pretrain-steps", "3", "--pretrain-batch", "16",
                      "--seg-steps", "3", "--seg-batch", "8", "--seg-examples", "64"]) == 0
    report = json.loads((out / "report" / "report.json").read_text())
    kinds = sorted(r["kind"] for r in report["rows"])
    assert kinds == ["run", "scratch"]
    mae = next(r for r in report["rows"] if r["kind"] == "run")
    summary = json.loads((out / "pretrain" / "mae" / "summary.json").read_text())
    assert mae["pretrain_flops"] == pytest.approx(summary["total_flops"]) and mae["pretrain_flops"] > 0
    assert 0.0 <= mae["miou"] <= 1.0
    assert (out / "report" / "accuracy_vs_flops.png").read_bytes()[:4] == b"\x89PNG"
    assert demo.main(["--methods", "moco"]) == 2

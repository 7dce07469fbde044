"""flopwise-sweep and flopwise-pretrain --set: bad input is one error line before anything runs; a miniature
sweep end to end (two methods, one of them a custom method by import path, two budgets, scratch)."""

import csv
import json
import math
import shlex
import sys
from pathlib import Path

import pytest
from flopstudy.cli import sweep
from segtransfer.cli import finetune_seg
from sslmethods.cli import pretrain

ROOT = Path(__file__).resolve().parents[1]
FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
EXAMPLES = ROOT / "packages" / "sslmethods" / "examples"  # holds simsiam.py, a user's method


@pytest.mark.parametrize(("setting", "message"), [
    ("method.foo=1", "--set method.foo: not a field of MAE; valid fields: decoder, decoder_depth, decoder_width"),
    ("optim.lr=fast", "--set optim.lr='fast': expected float"),
    ("lr=1", "--set 'lr=1': expected section.field=value"),
])
def test_pretrain_set_errors_name_the_field_before_anything_is_built(setting, message, tmp_path, capsys):
    assert pretrain.main(["--method", "mae", "--model", "vit-test", "--dataset", str(tmp_path / "none"), "--steps",
                          "1", "--batch", "4", "--out", str(tmp_path / "run"), "--set", setting]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_sweep_tool_errors_are_one_line(tmp_path, capsys):
    config = str(ROOT / "configs" / "demo.py")
    assert sweep.main(["--config", config, "--out", str(tmp_path), "--config.budgetz=1"]) == 2
    assert capsys.readouterr().err.startswith("error: --config.budgetz: no such field; valid fields: backbones")
    assert sweep.main(["--config", config, "--out", str(tmp_path), "--config.datasets=('missing_set',)"]) == 2
    assert "error: config.datasets: dataset 'missing_set' is not a TFDS directory" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


MINI = [
    "--config.methods=('mae','simsiam:SimSiam')", "--config.budgets=(2,4)", "--config.budget_unit=steps",
    "--config.datasets=('fmnist_objects',)", "--config.batch=8", "--config.image_size=32",
    "--config.knn_bank=16", "--config.knn_query=8", "--config.confirm_seeds=0", "--config.pretrain.log_every=2",
    "--config.build_datasets={'fmnist_objects': {'num_examples': 48}, 'fmnist_scenes': {'num_examples': 24}}",
    "--config.tasks.segmentation.steps=2", "--config.tasks.segmentation.batch=4",
    "--config.tasks.segmentation.image_size=32", "--config.tasks.segmentation.head_channels=8",
    "--config.tasks.segmentation.norm_groups=4",
]


@pytest.mark.slow
@pytest.mark.skipif(not FMNIST.exists(), reason="Fashion-MNIST (Debian dataset-fashion-mnist) is not installed")
def test_miniature_sweep_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setenv("FLOPWISE_JAX_CACHE", str(tmp_path / "jax_cache"))
    out = tmp_path / "mini"
    command = ["--config", str(ROOT / "configs" / "demo.py"), "--out", str(out), *MINI]
    assert sweep.main(command) == 0
    assert "sweep demo: 5/5 runs done, 0 running, 0 failed, 0 left" in capsys.readouterr().out
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert sorted((r["method"], r["pretrain_steps"]) for r in rows) == [
        ("mae", "2"), ("mae", "4"), ("scratch", "0"), ("simsiam:SimSiam", "2"), ("simsiam:SimSiam", "4")]
    for row in rows:
        assert row["status"] == "done" and 0 <= float(row["score"]) <= 100 and float(row["finetune_flops"]) > 0
        assert row["task"] == "fmnist_scenes segmentation" and row["score_metric"] == "mIoU"
        # no confirm seeds asked for: every pre-trained seed is an explore seed, every scratch seed a confirm seed
        assert row["seed_role"] == ("confirm" if row["method"] == "scratch" else "explore")
        if row["method"] != "scratch":
            flops = json.loads((Path(row["run_dir"]) / "flops.json").read_text())
            assert float(row["flops_per_step"]) == flops["flops_per_step"] > 0
            assert float(row["pretrain_flops"]) == flops["flops_per_step"] * int(row["pretrain_steps"])
            assert float(row["flops_per_step_per_device"]) == flops["flops_per_step"] / 4  # 4 fake CPU devices
            assert row["num_devices"] == "4" and 0 <= float(row["upstream_accuracy"]) <= 100
            assert math.isfinite(float(row["upstream_loss"])) and float(row["pretrain_seconds"]) > 0  # SimSiam's < 0
            # the upstream loss is the held-out one the run recorded, not its last batch's
            summary = json.loads((Path(row["run_dir"]) / "pretrain" / "summary.json").read_text())
            assert row["upstream_loss_source"] == "heldout"
            assert float(row["upstream_loss"]) == summary["final_metrics"]["heldout_loss"]
    # the same command again: every stage is done, nothing is rerun, the table is identical
    table = (out / "results.csv").read_bytes()
    finished = sorted(out.glob("runs/*/pretrain/summary.json")) + sorted(out.glob("runs/*/tasks/*/result.json"))
    stamps = [p.stat().st_mtime_ns for p in finished]
    assert sweep.main(command) == 0
    assert [p.stat().st_mtime_ns for p in finished] == stamps and (out / "results.csv").read_bytes() == table
    assert sweep.main(["--out", str(out), "--table-only"]) == 0
    assert (out / "results.csv").read_bytes() == table
    print(table.decode(), file=sys.stderr)
    # each task folder records the flopwise-finetune-seg command that reruns it: run by hand (into another
    # folder), it gives the sweep's scores, seed for seed (a pre-trained encoder and scratch)
    rerun = [r for r in rows if r["method"] in ("mae", "scratch") and r["pretrain_steps"] in ("4", "0")
             and r["seed"] == "0"]
    assert len(rerun) == 2
    for row in rerun:
        task_dir = next((Path(row["run_dir"]) / "tasks").iterdir())
        words = shlex.split((task_dir / "command.txt").read_text())
        assert words[0] == "flopwise-finetune-seg" and words[words.index("--out") + 1] == str(task_dir)
        words[words.index("--out") + 1] = str(tmp_path / f"again-{row['method']}")
        assert finetune_seg.main(words[1:]) == 0
        again = json.loads((tmp_path / f"again-{row['method']}" / "result.json").read_text())
        swept = json.loads((task_dir / "result.json").read_text())
        assert again["seeds"] == swept["seeds"] and again["per_seed_miou"] == swept["per_seed_miou"]
        assert 100 * again["per_seed_miou"][0] == pytest.approx(float(row["score"]))

"""flopwise-finetune-seg (segtransfer.cli.finetune_seg): argument errors, and a tiny end-to-end run whose
result.json flopwise-report accepts."""

import json
import shlex
from pathlib import Path

import jax.random as jr
import pytest
import runloop
import vitcore
from flopstudy.cli import report
from segtransfer import SegmentationSpec
from segtransfer.cli import finetune_seg

FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--encoder", "scratch", "--dataset", "fmnist_scenes"], "--model"),
        (["--encoder", "scratch", "--model", "vit-test", "--dataset", "cityscapes"], "fmnist_scenes"),
        (["--encoder", "weights.pth", "--model", "vit-test", "--dataset", "ade20k"], "'scratch', a pre-training run"),
        (["--encoder", "scratch", "--model", "vit-x", "--dataset", "ade20k"], "vit-test"),
        (["--encoder", "scratch", "--model", "vit-test", "--dataset", "ade20k", "--grid", "--lr", "1e-4"], "--grid"),
        (["--encoder", "scratch", "--model", "vit-test", "--dataset", "ade20k", "--steps", "3", "--epochs", "2"],
         "not allowed with"),
        (["--encoder", "scratch", "--model", "vit-test", "--dataset", "ade20k", "--seeds", "0"],
         "argument --seeds: expected an integer >= 1, got '0'"),
        (["--encoder", "scratch", "--model", "vit-test", "--dataset", "ade20k", "--eval-mode", "whole"], "slide"),
    ],
)
def test_bad_arguments_fail_fast_naming_the_choices(tmp_path, capsys, argv, message):
    assert finetune_seg.main([*argv, "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "data").exists()


def test_a_timm_file_without_a_known_normalisation_needs_mean_and_std(tmp_path, capsys):
    import numpy as np

    fixture = Path(vitcore.__file__).parents[2] / "tests" / "fixtures" / "timm_vit_tiny.npz"
    with np.load(fixture) as data:  # the parameters alone: no mean/std arrays, no config.json beside
        np.savez(tmp_path / "w.npz", **{n: data[n] for n in data.files if n.startswith("param/")})
    argv = ["--encoder", str(tmp_path / "w.npz"), "--model", "vit-test", "--dataset", "fmnist_scenes",
            "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")]
    assert finetune_seg.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --encoder: ") and "normalisation is unknown" in err and "--mean/--std" in err
    assert err.count("\n") == 1 and not (tmp_path / "out").exists() and not (tmp_path / "data").exists()
    assert finetune_seg.main([*argv, "--mean", "0.5", "0.5", "0.5"]) == 2
    assert "--mean/--std: give both the mean and the std" in capsys.readouterr().err
    assert finetune_seg.main(["--encoder", "scratch", *argv[2:], "--mean", "0.5", "0.5", "0.5", "--std", "1", "1",
                              "1"]) == 2
    assert "--mean/--std: only a timm weights file takes a normalisation" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unbuilt_ade20k_names_the_build_command(tmp_path, capsys):
    assert finetune_seg.main(["--encoder", "scratch", "--model", "vit-test", "--dataset", "ade20k",
                              "--out", str(tmp_path / "o"), "--data-dir", str(tmp_path / "data")]) == 2
    assert "error: --dataset: dataset 'ade20k' is not built; run: flopwise-build-dataset ade20k" in (
        capsys.readouterr().err)


@pytest.mark.slow  # one compiled step, one eval, one FLOP measurement: ~20-40 s on 2 shared cores
@pytest.mark.skipif(not FMNIST.exists(), reason="Fashion-MNIST (Debian dataset-fashion-mnist) is not installed")
def test_end_to_end_from_a_run_directory(tmp_path):
    import flopdata

    flopdata.build("fmnist_scenes", data_dir=tmp_path / "data", num_examples=24, image_size=32)
    run = tmp_path / "pretrain"
    runloop.write_files_atomic(run, vitcore.encoder_files(vitcore.create("vit-test", key=jr.key(0))))
    runloop.PretrainSummary(method="mae", model="vit-test", dataset="fmnist_objects", status="completed", steps=10,
                            batch_size=8, flops_per_step=3e8, total_flops=3e9, kg_co2e=1e-7).write(run / "summary.json")
    out = tmp_path / "seg"
    assert finetune_seg.main(["--encoder", str(run), "--dataset", "fmnist_scenes", "--data-dir",
                              str(tmp_path / "data"), "--out", str(out), "--steps", "3", "--batch", "4",
                              "--image-size", "32", "--log-every", "1"]) == 0
    result = json.loads((out / "result.json").read_text())
    types = {"dataset": str, "miou": float, "aacc": float, "iou": list, "finetune_flops": float,
             "finetune_flops_per_step": float, "steps": int, "batch_size": int, "image_size": int, "lr": float,
             "wd": float, "seeds": list, "per_seed_miou": list, "eval_mode": str, "encoder": dict}
    for key, kind in types.items():
        assert isinstance(result[key], kind), (key, result[key])
    assert 0.0 <= result["miou"] <= 1.0 and 0.0 <= result["aacc"] <= 1.0 and len(result["iou"]) == 11
    assert all(v is None or 0.0 <= v <= 1.0 for v in result["iou"])
    assert (result["steps"], result["batch_size"], result["image_size"], result["seeds"]) == (3, 4, 32, [0])
    assert result["finetune_flops"] == 3 * result["finetune_flops_per_step"] > 0
    assert result["eval_mode"] == "center_crop" and result["dataset"] == "fmnist_scenes"
    assert result["encoder"] == {"kind": "run", "path": str(run.resolve()), "method": "mae", "model": "vit-test",
                                 "pretrain_dataset": "fmnist_objects", "pretrain_steps": 10, "pretrain_flops": 3e9,
                                 "pretrain_kg_co2e": 1e-7}
    # the folder records the command that reruns it, every option spelled out
    words = shlex.split((out / "command.txt").read_text())
    assert words[:3] == ["flopwise-finetune-seg", "--encoder", str(run.resolve())]
    assert finetune_seg.spec_of(finetune_seg.build_parser().parse_args(words[1:])) == SegmentationSpec(
        dataset="fmnist_scenes", steps=3, batch=4, image_size=32, lrs=(1e-4,), wds=(0.05,), seeds=1, log_every=1)
    assert report.main([str(out), "--out", str(out / "report")]) == 0
    rep = json.loads((out / "report" / "report.json").read_text())
    assert [r["method"] for r in rep["rows"]] == ["mae"] and rep["rows"][0]["miou"] == pytest.approx(result["miou"])
    # a finished result is not overwritten without --resume
    assert finetune_seg.main(["--encoder", str(run), "--dataset", "fmnist_scenes", "--data-dir",
                              str(tmp_path / "data"), "--out", str(out), "--steps", "3"]) == 2

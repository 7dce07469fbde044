"""segtransfer.cli.finetune_det (tools/finetune_det.py): bad input is one line `error: ...` and status 2, found
before anything is written."""

import pytest
from segtransfer.cli.finetune_det import main

SCRATCH = ["--encoder", "scratch", "--model", "vit-test"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--encoder", "scratch", "--dataset", "fmnist_scenes"], "error: --encoder scratch needs --model, one of ["),
        ([*SCRATCH, "--dataset", "ade20k"], "error: argument --dataset: invalid choice: 'ade20k'"),
        (["--encoder", "w.pth", "--model", "vit-test", "--dataset", "fmnist_scenes"],
         "error: --encoder: encoder='w.pth': expected 'scratch', a pre-training run directory, or a timm"),
        ([*SCRATCH, "--dataset", "fmnist_scenes", "--steps", "0"],
         "error: argument --steps: expected an integer >= 1, got '0'"),
        ([*SCRATCH, "--dataset", "fmnist_scenes", "--layer-decay", "1.5"],
         "error: --layer-decay: layer_decay=1.5: expected a value in (0, 1]"),
        ([*SCRATCH, "--dataset", "fmnist_scenes", "--steps", "10", "--warmup", "10"],
         "error: --warmup: warmup=10: expected 0 <= warmup < steps=10"),
        ([*SCRATCH, "--dataset", "fmnist_scenes", "--resume"], "holds no detection runs; there is nothing to resume"),
        ([*SCRATCH, "--dataset", "coco_instances"], "error: --dataset: dataset 'coco_instances' is not built; run: "
                                                     "flopwise-build-dataset coco_instances"),
    ],
)
def test_bad_input_is_one_line_and_status_2(tmp_path, capsys, argv, message):
    status = main([*argv, "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert status == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "data").exists()


def test_a_finished_result_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "result.json").write_text("{}")
    status = main([*SCRATCH, "--dataset", "fmnist_scenes", "--out", str(tmp_path / "out")])
    assert status == 2 and "error: --out: out_dir=" in capsys.readouterr().err
    assert (tmp_path / "out" / "result.json").read_text() == "{}"


def test_a_timm_file_needs_a_known_normalisation(tmp_path, capsys):
    from pathlib import Path

    import numpy as np
    import vitcore

    fixture = Path(vitcore.__file__).parents[2] / "tests" / "fixtures" / "timm_vit_tiny.npz"
    with np.load(fixture) as data:  # the parameters alone: no mean/std arrays, no config.json beside
        np.savez(tmp_path / "w.npz", **{n: data[n] for n in data.files if n.startswith("param/")})
    argv = ["--encoder", str(tmp_path / "w.npz"), "--model", "vit-test", "--dataset", "fmnist_scenes",
            "--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "data")]
    for extra, message in (([], "normalisation is unknown"), (["--std", "1", "1", "1"], "give both the mean"),
                           (["--mean", "0.5", "0.5", "0.5", "--std", "0", "1", "1"], "3 positive standard")):
        assert main([*argv, *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --encoder: ") or err.startswith("error: --mean/--std"), err
        assert message in err and "--mean/--std" in err and err.count("\n") == 1, err
    assert main([*SCRATCH, *argv[4:], "--mean", "0.5", "0.5", "0.5", "--std", "1", "1", "1"]) == 2
    assert "only a timm weights file takes a normalisation" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "data").exists()

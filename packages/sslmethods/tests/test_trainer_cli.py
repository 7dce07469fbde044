"""flopwise-pretrain (sslmethods.cli.pretrain) fails fast on bad arguments, naming the valid choices (no training
is started, no run directory created)."""

import pytest
from sslmethods.cli import pretrain


def _fails(capsys, argv, *expected):
    assert pretrain.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for text in expected:
        assert text in err, err
    return err


BASE = ["--steps", "5", "--batch", "8"]


def test_unknown_method_and_model(capsys):
    _fails(capsys, ["--method", "moco", "--model", "vit-test", "--dataset", "fmnist_objects", *BASE],
           "argument --method: method='moco'; expected a registered name (supervised, clip, simclr, byol, dino, "
           "mae) or 'package.module:ClassName'")
    _fails(capsys, ["--method", "no_such_pkg:Method", "--model", "vit-test", "--dataset", "fmnist_objects", *BASE],
           "cannot import module 'no_such_pkg'")
    _fails(capsys, ["--method", "dino", "--model", "vit-x", "--dataset", "fmnist_objects", *BASE],
           "invalid choice: 'vit-x'", "vit-b16", "vit-test")
    _fails(capsys, ["--method", "dino", "--model", "vit-test", "--dataset", "fmnist_objects", *BASE,
                    "--preset", "paper:imagenet"], "invalid choice: 'paper:imagenet'", "paper:i1k")


def test_batch_not_divisible_by_devices(capsys, tmp_path):
    _fails(capsys, ["--method", "dino", "--model", "vit-test", "--dataset", "fmnist_objects", "--steps", "5",
                    "--batch", "10", "--out", str(tmp_path / "run")],
           "--batch: batch_size=10 is not divisible by the 4 devices")
    assert not (tmp_path / "run").exists()


def test_unknown_or_missing_dataset(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("FLOPWISE_DATA", str(tmp_path))
    out = ["--out", str(tmp_path / "run")]
    _fails(capsys, ["--method", "dino", "--model", "vit-test", "--dataset", "imagenet9", *BASE, *out],
           "--dataset: ", "not a TFDS directory and not one of", "fmnist_objects", "ade20k")
    _fails(capsys, ["--method", "dino", "--model", "vit-test", "--dataset", "ade20k", *BASE, *out],
           "is not built; run: flopwise-build-dataset ade20k")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("flags", "expected"), [
    (["--image-size", "0"], "argument --image-size: expected an integer >= 1, got '0'"),
    (["--image-size", "30"], "--image-size 30: ViTConfig.image_size=30 is not divisible by patch_size"),
    (["--watts", "-5"], "argument --watts: expected a number > 0, got '-5'"),
    (["--hardware", "tpu-v9"], "--hardware: "),
    (["--seed", "-1"], "argument --seed: expected an integer >= 0, got '-1'"),
    (["--resume"], "--resume: "),
])
def test_bad_flags_are_named_before_any_side_effect(capsys, tmp_path, monkeypatch, flags, expected):
    monkeypatch.setenv("FLOPWISE_DATA", str(tmp_path / "data"))
    _fails(capsys, ["--method", "mae", "--model", "vit-test", "--dataset", "fmnist_objects", *BASE,
                    "--out", str(tmp_path / "run"), *flags], expected)
    assert not (tmp_path / "run").exists() and not (tmp_path / "data").exists()  # nothing built, nothing created

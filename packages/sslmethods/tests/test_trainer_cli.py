"""tools/pretrain.py fails fast on bad arguments, naming the valid choices (no training is started)."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def pretrain():
    sys.path.insert(0, str(ROOT / "tools"))
    spec = importlib.util.spec_from_file_location("pretrain_tool", ROOT / "tools" / "pretrain.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fails(pretrain, capsys, argv, *expected):
    with pytest.raises(SystemExit) as info:
        pretrain.main(argv)
    message = capsys.readouterr().err + str(info.value.code)
    assert info.value.code != 0
    for text in expected:
        assert text in message, message
    return message


BASE = ["--steps", "5", "--batch", "8"]


def test_unknown_method_and_model(pretrain, capsys, tmp_path):
    _fails(pretrain, capsys, ["--method", "moco", "--model", "vit-test", "--dataset", "fmnist_objects", *BASE],
           "argument --method: method='moco'; expected a registered name (supervised, clip, simclr, byol, dino, "
           "mae) or 'package.module:ClassName'")
    _fails(pretrain, capsys, ["--method", "no_such_pkg:Method", "--model", "vit-test", "--dataset",
                              "fmnist_objects", *BASE], "cannot import module 'no_such_pkg'")
    _fails(pretrain, capsys, ["--method", "dino", "--model", "vit-x", "--dataset", "fmnist_objects", *BASE],
           "invalid choice: 'vit-x'", "vit-b16", "vit-test")
    _fails(pretrain, capsys, ["--method", "dino", "--model", "vit-test", "--dataset", "fmnist_objects", *BASE,
                              "--preset", "paper:imagenet"], "invalid choice: 'paper:imagenet'", "paper:i1k")


def test_batch_not_divisible_by_devices(pretrain, capsys):
    _fails(pretrain, capsys, ["--method", "dino", "--model", "vit-test", "--dataset", "fmnist_objects",
                              "--steps", "5", "--batch", "10"], "batch_size=10 is not divisible by the 4 devices")


def test_unknown_or_missing_dataset(pretrain, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("FLOPWISE_DATA", str(tmp_path))
    _fails(pretrain, capsys, ["--method", "dino", "--model", "vit-test", "--dataset", "imagenet9", *BASE],
           "not a TFDS directory and not one of", "fmnist_objects", "ade20k")
    _fails(pretrain, capsys, ["--method", "dino", "--model", "vit-test", "--dataset", "ade20k", *BASE],
           "is not built; run: python tools/build_dataset.py ade20k")

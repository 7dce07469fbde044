"""PretrainSpec is what flopwise-pretrain parses: every field is a flag, flags rebuild a spec exactly, a bad value
names its flag before anything is written, and a run leaves the command that reruns it."""

import dataclasses
import shlex

import flopcli
import pytest
from sslmethods.cli import pretrain
from sslmethods.pretrain.spec import COMMAND, PretrainSpec

NON_DEFAULT = PretrainSpec(
    method="mae", model="vit-test", dataset="/data/my set", steps=123, batch=16, preset="paper:i1k",
    set=("method.mask_ratio=0.6", "model.patch_size=8", "model.mean=(0.5, 0.5, 0.5)"), image_size=48, seed=3,
    knn_bank=0, knn_query=7, init_from="runs/first stage", checkpoint_every=11, log_every=2, eval_every=5,
    workers=2, fsdp=True, skip_nonfinite=True, hardware="tpu-v3", watts=250.0, tensorboard=True,
    print_progress=False)


def _parse(words):
    return flopcli.spec_from_flags(PretrainSpec, pretrain.build_parser().parse_args(words), base=pretrain.BASE)


def test_help_lists_every_field(capsys):
    assert pretrain.main(["--help"]) == 0
    text = capsys.readouterr().out
    for field in dataclasses.fields(PretrainSpec):
        if field.init:
            assert flopcli.flag_name(field.name) in text, field.name


@pytest.mark.parametrize("spec", [pretrain.BASE, PretrainSpec(), NON_DEFAULT], ids=["command", "spec", "changed"])
def test_flags_rebuild_the_spec(spec):
    words = spec.flags()
    assert _parse(words) == spec
    # through the printed command too (shell quoting of the space in a path and of the tuple's comma)
    assert _parse(shlex.split(spec.command(out_dir="runs/x y"))[3:]) == spec


def test_overrides_are_typed_and_canonical():
    spec = PretrainSpec(method="mae", set=("optim.lr=1", "method.mask_ratio=0.6"))
    assert spec.set == ("method.mask_ratio=0.6", "optim.lr=1.0")  # sorted; an int for a float field is a float
    assert spec.overrides.optim == {"lr": 1.0} and spec.overrides.method == {"mask_ratio": 0.6}
    assert spec == PretrainSpec(method="mae", set=("optim.lr=1.0", "method.mask_ratio=0.6"))
    method, optim = spec.build()
    assert optim.lr == 1.0 and method.mask_ratio == 0.6
    # the explicit image size wins over model.image_size
    method, _ = PretrainSpec(method="mae", set=("model.image_size=64",), image_size=48).build()
    assert method.backbone.image_size == 48


@pytest.mark.parametrize(("flags", "expected"), [
    (["--knn-bank", "-1"], "argument --knn-bank: expected an integer >= 0, got '-1'"),
    (["--set", "method.foo=1"], "--set method.foo: not a field of MAE"),
    (["--image-size", "30"], "--image-size 30: ViTConfig.image_size=30 is not divisible by patch_size"),
    (["--hardware", "tpu-v9"], "--hardware: hardware='tpu-v9'"),
    (["--print-progress", "maybe"], "unrecognized arguments: maybe"),
])
def test_a_bad_value_names_its_flag_and_writes_nothing(capsys, tmp_path, monkeypatch, flags, expected):
    monkeypatch.setenv("FLOPWISE_DATA", str(tmp_path / "data"))
    argv = ["--method", "mae", "--model", "vit-test", "--dataset", "fmnist_objects", "--steps", "2", "--batch", "4",
            "--out", str(tmp_path / "run"), *flags]
    assert pretrain.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "run").exists() and not (tmp_path / "data").exists()


def test_spec_checks_each_field():
    for change, named in [({"steps": 0}, "steps=0"), ({"batch": True}, "batch=True"), ({"model": "vit-x"},
                          "model='vit-x'"), ({"preset": "paper"}, "preset='paper'"), ({"watts": -1.0}, "watts=-1.0"),
                          ({"method": "moco"}, "method='moco'"), ({"set": ("lr=1",)}, "set 'lr=1'")]:
        with pytest.raises(ValueError, match="^" + named.replace("(", r"\(").replace(")", r"\)")):
            PretrainSpec(**change)


def test_command_names_the_command_and_every_field():
    words = shlex.split(NON_DEFAULT.command(out_dir="/runs/a", data_dir="/data"))
    assert words[:5] == [COMMAND, "--out", "/runs/a", "--data-dir", "/data"]
    assert "--no-print-progress" in words and words[words.index("--set") + 1:words.index("--image-size")] == list(
        NON_DEFAULT.set)

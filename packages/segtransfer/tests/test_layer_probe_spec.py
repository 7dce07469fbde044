"""LayerProbeSpec is what flopwise-probe-layers parses: every field is a flag, flags rebuild a spec exactly, a bad
value names its flag before anything is written, a study records the command that reruns it, and
`read_layer_probe` reads its result back (today's and the earlier form) or names a broken file."""

import dataclasses
import json
import shlex

import flopcli
import flopdata
import pytest
from segtransfer import read_layer_probe
from segtransfer.cli import probe_layers
from segtransfer.probe import study
from segtransfer.probe.layer_probe import LayerScore, ProbeConfig
from segtransfer.probe.spec import COMMAND, COMMAND_FILE, LayerProbeSpec

NON_DEFAULT = LayerProbeSpec(dataset="fmnist_scenes", image_size=32, train_examples=10, eval_examples=6, steps=7,
                             lr=0.01, weight_decay=0.0, batch=3, seeds=2, val_fraction=0.3)


def _parse(words):
    args = probe_layers.build_parser().parse_args(["--encoder", "scratch", "--out", "x", *words])
    return flopcli.spec_from_flags(LayerProbeSpec, args, base=probe_layers.BASE)


def test_help_lists_every_field(capsys):
    assert probe_layers.main(["--help"]) == 0
    text = capsys.readouterr().out
    for field in dataclasses.fields(LayerProbeSpec):
        assert flopcli.flag_name(field.name) in text, field.name


@pytest.mark.parametrize("spec", [LayerProbeSpec(), NON_DEFAULT], ids=["defaults", "changed"])
def test_flags_rebuild_the_spec(spec):
    assert _parse(flopcli.spec_to_flags(spec)) == spec
    words = shlex.split(spec.command(encoder="scratch", out_dir="runs/a b", model="vit-test", data_dir="/d"))
    assert words[0] == COMMAND and _parse(words[words.index("--dataset"):]) == spec


@pytest.mark.parametrize(("flags", "expected"), [
    (["--val-fraction", "1"], "--val-fraction: val_fraction=1.0: expected 0 < val_fraction < 1"),
    (["--steps", "0"], "argument --steps: expected an integer >= 1, got '0'"),
    (["--image-size", "30"], "--image-size 30: "),
    (["--resume"], "--resume: "),
])
def test_a_bad_value_names_its_flag_and_writes_nothing(capsys, tmp_path, flags, expected):
    argv = ["--encoder", "scratch", "--model", "vit-test", "--dataset", "fmnist_scenes", "--out",
            str(tmp_path / "out"), "--data-dir", str(tmp_path / "data"), *flags]
    assert probe_layers.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "data").exists()


def test_a_study_probes_as_its_spec_says_keeps_finished_seeds_and_writes_its_command(tmp_path, monkeypatch, capsys):
    flopdata.build("fmnist_scenes", data_dir=tmp_path / "data", num_examples=12, image_size=32)
    calls = []

    def fake_probe(backbone, directory, *, num_classes, image_size, train_split, eval_split, train_examples,
                   eval_examples, key, config, val_fraction):
        calls.append((image_size, train_examples, eval_examples, config, val_fraction, backbone.config.image_size))
        return [LayerScore(0, "block0", 16, 8, 0.5, miou=0.25, aacc=0.5, val_miou=0.3, val_aacc=0.6)]

    monkeypatch.setattr(study, "probe_dataset", fake_probe)
    out = tmp_path / "probe"
    argv = ["--encoder", "scratch", "--model", "vit-test", "--out", str(out), "--data-dir", str(tmp_path / "data"),
            *flopcli.spec_to_flags(NON_DEFAULT)]
    assert probe_layers.main(argv) == 0, capsys.readouterr().err
    expected = (32, 10, 6, ProbeConfig(steps=7, lr=0.01, weight_decay=0.0, batch_size=3), 0.3, 32)
    assert calls == [expected, expected]  # seeds 0 and 1
    result = json.loads((out / "result.json").read_text())
    assert result["seeds"] == [0, 1] and result["val_fraction"] == 0.3 and result["image_size"] == 32
    assert read_layer_probe(out) == result and read_layer_probe(tmp_path / "data") is None
    words = shlex.split((out / COMMAND_FILE).read_text())
    assert words[:5] == [COMMAND, "--encoder", "scratch", "--model", "vit-test"]
    assert _parse(words[words.index("--dataset"):]) == NON_DEFAULT
    # three seeds with --resume: only seed 2 is probed
    assert probe_layers.main([*argv, "--seeds", "3", "--resume"]) == 0, capsys.readouterr().err
    assert len(calls) == 3 and json.loads((out / "result.json").read_text())["seeds"] == [0, 1, 2]
    assert probe_layers.main(argv) == 2 and "already holds result.json" in capsys.readouterr().err


_LAYER = {"index": 0, "name": "block0", "stride": 16, "channels": 8, "depth": 0.5, "miou": 0.25, "aacc": 0.5}
# a result written before the validation split: no val_fraction, no validation scores
_EARLIER = {"seeds": [0, 2], "layers": [[_LAYER, _LAYER | {"index": 1, "depth": 1.0}]] * 2, "dataset": "ade20k",
            "image_size": 512}


@pytest.mark.parametrize(("change", "message"), [
    ({"seeds": [0, 0]}, r"seeds=\[0, 0\]: expected a list of distinct ints"),
    ({"seeds": [0, True]}, r"seeds=\[0, True\]"),
    ({"layers": [[_LAYER]]}, r"layers: expected one list of layers per seed \(2\)"),
    ({"layers": [[_LAYER, _LAYER], [_LAYER]]}, "layers of seed 2: expected 2 layers, as every seed"),
    ({"layers": [[_LAYER, 3]] * 2}, "layers of seed 0: expected objects, found int"),
    ({"layers": [[_LAYER | {"extra": 1}]] * 2}, "unexpected keyword argument 'extra'"),
    ({"layers": [[{"index": 0}]] * 2}, "missing"),
])
def test_read_layer_probe_reads_the_earlier_form_and_names_a_broken_file(tmp_path, change, message):
    path = tmp_path / "result.json"
    path.write_text(json.dumps(_EARLIER))
    assert read_layer_probe(tmp_path) == _EARLIER
    path.write_text(json.dumps(_EARLIER | change))
    with pytest.raises(ValueError, match=rf"{path} is not a valid layer-probe result \(.*{message}"):
        read_layer_probe(tmp_path)
    for text in ("{not json", json.dumps({"seeds": [0]}), json.dumps([1, 2])):
        path.write_text(text)
        with pytest.raises(ValueError, match=rf"{path} is not a valid layer-probe result"):
            read_layer_probe(tmp_path)

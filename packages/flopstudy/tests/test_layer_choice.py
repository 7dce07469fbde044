"""The layer-probe task reports the test score of the layer chosen on validation data only, read back into the
table and the layer curves; results written before the validation split keep their best-on-test layer, labelled."""

import flopstudy
import pytest
from flopstudy.analysis.layer_transfer import layer_curves
from flopstudy.stages.layer_probe import LayerProbeTask
from flopstudy.stages.registry import task_spec
from segtransfer import LayerProbeSpec


def _layers(test, val=None):
    return [{"index": i, "name": f"block{i}", "stride": 8, "channels": 32, "depth": (i + 1) / len(test),
             "miou": t, "aacc": 0.5, **({} if val is None else {"val_miou": val[i], "val_aacc": 0.5})}
            for i, t in enumerate(test)]


def test_the_score_is_the_test_miou_of_the_layer_best_on_validation():
    # test is best at layer 3 for both seeds, validation (mean over seeds) at layer 1
    result = {"seeds": [0, 1], "dataset": "ade20k", "image_size": 32, "val_fraction": 0.2,
              "layers": [_layers([0.20, 0.25, 0.22, 0.31], [0.30, 0.40, 0.35, 0.33]),
                         _layers([0.21, 0.27, 0.20, 0.33], [0.31, 0.44, 0.36, 0.30])]}
    parsed = LayerProbeTask().parse_result(result)
    assert parsed.scores == pytest.approx({0: 25.0, 1: 27.0})
    assert parsed.extras["best_layer"] == 1 and parsed.extras["best_depth"] == 0.5
    assert parsed.extras["layer_choice"] == "validation"
    assert parsed.extras["layer_val_mious"] == "30.500 42.000 35.500 31.500"
    assert parsed.extras["layer_mious"] == "20.500 26.000 21.000 32.000"


def test_an_older_result_without_validation_keeps_its_best_test_layer_labelled():
    parsed = LayerProbeTask().parse_result({"seeds": [0], "layers": [_layers([0.2, 0.3, 0.25])]})
    assert parsed.scores == pytest.approx({0: 30.0})
    assert parsed.extras["layer_choice"] == "test" and "layer_val_mious" not in parsed.extras


def test_the_validation_split_is_part_of_the_task_identity():
    assert task_spec("layer_probe", LayerProbeSpec()).settings["val_fraction"] == 0.2
    assert task_spec("layer_probe", LayerProbeSpec(val_fraction=0.3)) != task_spec("layer_probe",
                                                                                     LayerProbeSpec())
    with pytest.raises(ValueError, match="val_fraction=1.0"):
        LayerProbeSpec(val_fraction=1.0)


def _row(**fields):
    return flopstudy.ResultRow.from_record(
        {"method": "mae", "variant": "", "backbone": "vit-test", "pretrain_dataset": "objects", "pretrain_steps": 100,
         "pretrain_flops": 1e12, "task": "probe", "seed": 0, "score": 25.0, "status": "done"} | fields)


def test_layer_curves_choose_on_validation_where_the_table_has_it():
    rows = [_row(layer_mious="20 25 31", layer_val_mious="30 42 33", upstream_accuracy=50.0),
            _row(pretrain_flops=2e12, layer_mious="20 25 31", upstream_accuracy=60.0)]
    new, old = layer_curves(rows)
    assert (new.best_layer, new.score, new.choice) == (1, 25.0, "validation")
    assert (old.best_layer, old.score, old.choice) == (2, 31.0, "test")


def test_task_ids_are_those_the_settings_had_before_the_spec():
    # the id LayerProbeSettings (the sweep's own schema before LayerProbeSpec) gave: finished task folders are found
    assert task_spec("layer_probe", LayerProbeSpec()).task_id == "ade20k_layer_probe-6e7a1ecc5f0c"


def test_the_task_and_its_command_probe_the_same_way(tmp_path, monkeypatch, capsys):
    import json
    import shlex

    import flopdata
    from segtransfer.cli import probe_layers
    from segtransfer.probe import study
    from segtransfer.probe.layer_probe import LayerScore

    flopdata.build("fmnist_scenes", data_dir=tmp_path / "data", num_examples=12, image_size=32)
    capsys.readouterr()
    calls = []

    def fake_probe(backbone, directory, **kwargs):
        calls.append({k: v for k, v in kwargs.items() if k != "key"} | {"directory": directory})
        return [LayerScore(0, "block0", 16, 8, 0.5, miou=0.25, aacc=0.5, val_miou=0.3, val_aacc=0.6)]

    monkeypatch.setattr(study, "probe_dataset", fake_probe)
    spec = LayerProbeSpec(dataset="fmnist_scenes", image_size=32, train_examples=10, eval_examples=6, steps=5, seeds=2)
    LayerProbeTask().run(spec, encoder="scratch", model="vit-test", out_dir=tmp_path / "task", seeds=[0, 1],
                         data_dir=str(tmp_path / "data"))
    words = shlex.split((tmp_path / "task" / "command.txt").read_text())
    words[words.index("--out") + 1] = str(tmp_path / "by-hand")
    assert probe_layers.main(words[1:]) == 0, capsys.readouterr().err
    assert len(calls) == 4 and calls[:2] == calls[2:]
    assert (json.loads((tmp_path / "task" / "result.json").read_text())
            == json.loads((tmp_path / "by-hand" / "result.json").read_text()))

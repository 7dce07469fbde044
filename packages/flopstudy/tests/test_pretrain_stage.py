"""The sweep's pre-training stage and flopwise-pretrain build one PretrainSpec: given the same run they record
the same config.json, the command the stage leaves in its folder rebuilds the stage's spec, and a sweep folder
recorded before the two shared a record still resumes as the same run."""

import dataclasses
import json
import shlex

import flopcli
import flopdata
import pytest
import runloop
from flopstudy.specs.runs import RunSpec
from flopstudy.specs.settings import PretrainSettings
from flopstudy.stages import pretrain as stage
from sslmethods.cli import pretrain as cli
from sslmethods.pretrain import spec as spec_module
from sslmethods.pretrain import trainer
from sslmethods.pretrain.flop_budget import MEASURE_STEPS
from sslmethods.pretrain.spec import COMMAND_FILE, PretrainSpec

RUN = RunSpec(PretrainSpec(method="mae", model="vit-test", dataset="fmnist_objects", steps=3, batch=8, preset="demo",
                           image_size=32, seed=1, set=("method.mask_ratio=0.6", "optim.lr=0.001"), knn_bank=16,
                           knn_query=8))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("data")
    flopdata.build("fmnist_objects", data_dir=str(directory), num_examples=64, image_size=32)
    return directory


@pytest.fixture
def recorded(monkeypatch):
    """The config.json each trainer.train_method call would record, by run directory (nothing is trained)."""
    configs = {}

    def fake_train(method, optim, data, cfg, *, knn=None, heldout=None, run_info=None):
        configs[cfg.out_dir] = json.loads(json.dumps(runloop.to_jsonable(trainer.run_config(method, optim, cfg,
                                                                                            run_info))))
        assert knn is not None and len(knn.train_labels) == 16 and len(knn.test_labels) == 8
        summary = runloop.PretrainSummary(method=method.name, model=None, dataset=None, status="completed",
                                          steps=cfg.loop.steps, batch_size=cfg.loop.batch_size,
                                          flops_per_step=None, total_flops=None)
        return summary, None

    monkeypatch.setattr(spec_module.trainer, "train_method", fake_train)
    return configs


def test_the_command_and_the_stage_record_the_same_run(tmp_path, data_dir, recorded, capsys):
    swept = tmp_path / "sweep-run"
    stage.pretrain(RUN, steps=3, out_dir=swept, data_dir=str(data_dir), settings=PretrainSettings())
    by_hand = tmp_path / "by-hand"
    words = shlex.split((swept / COMMAND_FILE).read_text())
    assert words[0] == "flopwise-pretrain" and words[words.index("--out") + 1] == str(swept.resolve())
    words[words.index("--out") + 1] = str(by_hand)
    assert cli.main(words[1:]) == 0, capsys.readouterr().err
    a, b = recorded[str(swept)], recorded[str(by_hand)]
    # how each spells the engine's options in error hints differs (a may-change field); nothing else does
    a["train"].pop("option_names"), b["train"].pop("option_names")
    assert a == b
    assert a["run"]["overrides"] == list(RUN.pretrain.set) and a["run"]["image_size"] == 32
    assert a["train"]["seed"] == 1 and a["optim"]["lr"] == 0.001 and a["train"]["steps"] == 3
    # the stage's spec is exactly what the written command parses
    parsed = flopcli.spec_from_flags(PretrainSpec, cli.build_parser().parse_args(words[1:]), base=cli.BASE)
    assert parsed == stage.pretrain_spec(RUN, steps=3, settings=PretrainSettings())
    assert (by_hand / COMMAND_FILE).read_text() == (swept / COMMAND_FILE).read_text().replace(
        str(swept.resolve()), str(by_hand.resolve()))


@pytest.mark.parametrize("had_image_size", [False, True])
def test_a_run_recorded_without_the_image_size_resumes_as_recorded(tmp_path, data_dir, recorded, had_image_size):
    out = tmp_path / "run"
    out.mkdir()
    run = {"method": "mae", "model": "vit-test"} | ({"image_size": 32} if had_image_size else {})
    (out / runloop.run_directory.CONFIG_FILE).write_text(json.dumps({"run": run}))
    spec = stage.pretrain_spec(RUN, steps=3)
    spec.train(out, dataset_dir=flopdata.resolve("fmnist_objects", data_dir=str(data_dir)), resume=True)
    assert ("image_size" in recorded[str(out)]["run"]) == had_image_size


def test_a_flop_budget_is_measured_at_a_fixed_length_and_check_builds_the_same_method():
    flops = RunSpec(dataclasses.replace(RUN.pretrain, steps=None, flops=1e12))
    assert stage.pretrain_spec(flops).total_steps == MEASURE_STEPS
    method, optim = stage.build_run(RUN, total_steps=3, dataset_dir=None)
    assert method.mask_ratio == 0.6 and optim.lr == 0.001 and method.backbone.image_size == 32
    assert repr(method) == repr(PretrainSpec(method="mae", model="vit-test", steps=3, batch=8, image_size=32,
                                             set=("optim.lr=1e-3", "method.mask_ratio=0.6")).build()[0])

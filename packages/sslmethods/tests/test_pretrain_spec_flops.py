"""A FLOP budget as the length of a pre-training run: one rule (round(FLOPs / FLOPs per step), at least 1) for
``flopwise-pretrain --flops`` and a sweep, exclusive with --steps, checked before anything is written, recorded in
the run, and resumed without measuring again. `read_pretrain` gives back the spec a run directory was made from."""

import json
import shlex

import flopcli
import flopdata
import numpy as np
import pytest
import runloop
from sslmethods import read_pretrain
from sslmethods.cli import pretrain
from sslmethods.pretrain import spec as spec_module
from sslmethods.pretrain.flop_budget import MEASURE_STEPS, steps_for_flops
from sslmethods.pretrain.spec import COMMAND_FILE, PretrainSpec


def test_steps_for_flops_matches_a_float64_rederivation():
    rng = np.random.default_rng(0)
    per_step = 10.0 ** rng.uniform(6, 15, size=500)
    flops = per_step * rng.uniform(0.0, 400.0, size=500)
    flops[:20] = per_step[:20] * (np.arange(20) + 0.5)  # exact halves: numpy's rint and round both go to even
    expected = np.maximum(1, np.rint(flops / per_step)).astype(np.int64)
    assert [steps_for_flops(f, p) for f, p in zip(flops, per_step, strict=True)] == expected.tolist()
    assert steps_for_flops(1.0, 1e12) == 1  # never zero steps
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="^flops="):
            steps_for_flops(bad, 1.0)
        with pytest.raises(ValueError, match="^flops_per_step="):
            steps_for_flops(1.0, bad)


def test_the_spec_takes_one_length():
    spec = PretrainSpec(method="mae", steps=None, flops=4e11)
    assert spec.total_steps == MEASURE_STEPS
    assert spec.with_flops_per_step(3e9) == PretrainSpec(method="mae", steps=133)
    assert PretrainSpec(steps=7).with_flops_per_step(3e9) == PretrainSpec(steps=7)
    for change, named in [({"flops": 4e11}, "steps=50 and flops=400000000000.0"), ({"steps": None}, "steps=None"),
                          ({"steps": None, "flops": 0.0}, "flops=0.0"),
                          ({"steps": None, "flops": float("inf")}, "flops=inf")]:
        with pytest.raises(ValueError, match="^" + named):
            PretrainSpec(**change)


def _argv(tmp_path, *flags):
    return ["--method", "mae", "--model", "vit-test", "--dataset", "fmnist_objects", "--batch", "4",
            "--out", str(tmp_path / "run"), *flags]


@pytest.mark.parametrize(("flags", "expected"), [
    (["--flops", "0"], "argument --flops: expected a number > 0, got '0'"),
    (["--flops", "inf"], "argument --flops:"),
    (["--flops", "1e12", "--steps", "3"], "not allowed with argument"),
    ([], "--steps or --flops: give the run's length"),
])
def test_a_bad_length_names_its_flag_and_writes_nothing(capsys, tmp_path, monkeypatch, flags, expected):
    monkeypatch.setenv("FLOPWISE_DATA", str(tmp_path / "data"))
    assert pretrain.main(_argv(tmp_path, *flags)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "run").exists() and not (tmp_path / "data").exists()


def test_a_flop_budget_round_trips_through_its_flags():
    spec = PretrainSpec(method="mae", steps=None, flops=1.5e12, batch=8)
    words = shlex.split(spec.command(out_dir="runs/x"))
    assert "--flops" in words and "--steps" not in words
    parsed = pretrain.build_parser().parse_args(words[3:])
    parsed.steps = None  # what the command's body does when --flops is given
    assert flopcli.spec_from_flags(PretrainSpec, parsed, base=pretrain.BASE) == spec


@pytest.mark.slow
def test_flopwise_pretrain_trains_the_steps_of_its_flop_budget(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    flopdata.build("fmnist_objects", data_dir=str(data), num_examples=32, image_size=32)
    directory = flopdata.resolve("fmnist_objects", data_dir=str(data))
    spec = PretrainSpec(method="mae", model="vit-test", steps=None, flops=1.0, batch=4, image_size=32, knn_bank=0,
                        print_progress=False)
    per_step = spec.measure(directory)["flops_per_step"]
    budget = 2.6 * per_step  # 3 steps
    argv = _argv(tmp_path, "--flops", repr(budget), "--image-size", "32", "--knn-bank", "0", "--data-dir",
                 str(data), "--no-print-progress")
    assert pretrain.main(argv) == 0, capsys.readouterr().err
    out = tmp_path / "run"
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["flops"] == budget and config["run"]["flops_per_step"] == per_step
    assert config["train"]["steps"] == 3 == json.loads((out / "summary.json").read_text())["steps"]
    words = shlex.split((out / COMMAND_FILE).read_text())
    assert float(words[words.index("--flops") + 1]) == budget and "--steps" not in words
    assert read_pretrain(out) == pretrain.command_line.spec_from_args(pretrain.build_parser().parse_args(argv))
    # a resume takes the recorded FLOPs per step: nothing is measured again, the length stays 3 steps
    monkeypatch.setattr(PretrainSpec, "measure", lambda *a, **k: pytest.fail("measured again on resume"))
    assert pretrain.main([*words[1:], "--resume"]) == 0, capsys.readouterr().err
    assert json.loads((out / "config.json").read_text())["train"]["steps"] == 3


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    flopdata.build("fmnist_objects", data_dir=str(data), num_examples=32, image_size=32)
    return flopdata.resolve("fmnist_objects", data_dir=str(data))


def test_read_pretrain_gives_back_the_spec_a_run_was_trained_from(tmp_path, dataset_dir, monkeypatch):
    def fake_train(method, optim, data, cfg, *, knn=None, heldout=None, run_info=None):  # nothing is trained
        return runloop.PretrainSummary(method=method.name, model=None, dataset=None, status="completed",
                                       steps=cfg.loop.steps, batch_size=cfg.loop.batch_size, flops_per_step=None,
                                       total_flops=None), None

    monkeypatch.setattr(spec_module.trainer, "train_method", fake_train)
    spec = PretrainSpec(method="mae", model="vit-test", dataset=str(dataset_dir), steps=3, batch=4, preset="paper:i1k",
                        set=("method.mask_ratio=0.6", "model.mean=(0.5, 0.5, 0.5)"), image_size=32, seed=3,
                        knn_bank=0, knn_query=7, checkpoint_every=11, log_every=2, eval_every=5, workers=1,
                        skip_nonfinite=True, hardware="tpu-v3", watts=250.0, print_progress=False)
    out = tmp_path / "run with space"
    spec.train(out, dataset_dir=dataset_dir)
    assert read_pretrain(out) == spec
    with pytest.raises(ValueError, match=r"command.txt: no such file"):
        read_pretrain(tmp_path)
    (out / COMMAND_FILE).write_text("flopwise-pretrain --steps 0\n")
    with pytest.raises(ValueError, match=r"command.txt: argument --steps: expected an integer >= 1"):
        read_pretrain(out)
    (out / COMMAND_FILE).write_text("rm -rf /\n")
    with pytest.raises(ValueError, match=r"command.txt: not a flopwise-pretrain command"):
        read_pretrain(out)

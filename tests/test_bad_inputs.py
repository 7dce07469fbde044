"""Bad input to every command ends as ONE line ``error: ...`` naming the flag or the file, exit status 2, no
traceback, and nothing created (issue 12). Commands run in-process (``main(argv) -> int``); a few cases run the
real entry points in a subprocess.

Case ids say which of the issue's classes a case belonged to before the fix: ``silent-*`` produced a silently
wrong result (now refused), ``lost-*`` lost work or blocked a retry, every other case is a plain bad input. The
counts are the collected ids (see the report of the change, which states the command).
"""

import shutil
import subprocess
import sys
from pathlib import Path

import jax.random as jr
import numpy as np
import pytest
import runloop
import vitcore
from flopdata.cli import build_dataset, contact_sheet
from flopmeter import cli as flopmeter_cli
from flopstudy.cli import demo, plan, report, sweep
from segtransfer.cli import finetune_seg
from sslmethods.cli import pretrain, profile_flops

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "configs" / "demo.py")


def fails(capsys, code: int, *named: str) -> str:
    """Exit status 2, exactly one ``error:`` line (the last one), naming each of ``named``, no traceback."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2, err
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0], err
    assert "Traceback" not in err, err
    for text in named:
        assert text in errors[0], errors[0]
    return errors[0]


# ------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path, monkeypatch):
    # Nothing a case does may build the embedded sets into the checkout's data/.
    monkeypatch.setenv("FLOPWISE_DATA", str(tmp_path / "data-dir"))


@pytest.fixture(scope="module")
def encoder_run(tmp_path_factory) -> Path:
    """A run folder holding what pre-training leaves for fine-tuning: encoder.eqx/.json and summary.json."""
    run = tmp_path_factory.mktemp("pretrained") / "run"
    runloop.write_files_atomic(run, vitcore.encoder_files(vitcore.create("vit-test", key=jr.key(0))))
    runloop.PretrainSummary(method="mae", model="vit-test", dataset="fmnist_objects", status="completed", steps=2,
                            batch_size=4, flops_per_step=1e8, total_flops=2e8).write(run / "summary.json")
    return run


def _copy_run(encoder_run: Path, tmp_path: Path, *, drop: str | None = None, damage: dict | None = None) -> Path:
    run = tmp_path / "copy"
    shutil.copytree(encoder_run, run)
    if drop:
        (run / drop).unlink()
    for name, content in (damage or {}).items():
        (run / name).write_bytes(content)
    return run


# ------------------------------------------------------------------------------------------------- pretrain
PRE = ["--method", "supervised", "--model", "vit-test", "--dataset", "fmnist_objects", "--steps", "2",
       "--batch", "4"]


@pytest.mark.parametrize(("flags", "named"), [
    pytest.param(["--steps", "0"], "argument --steps", id="steps-0"),
    pytest.param(["--batch", "0"], "argument --batch", id="batch-0"),
    pytest.param(["--batch", "6"], "--batch", id="batch-not-divisible"),
    pytest.param(["--image-size", "0"], "argument --image-size: expected an integer >= 1", id="image-size-0"),
    pytest.param(["--image-size", "30"], "--image-size 30: ", id="image-size-not-a-patch-multiple"),
    pytest.param(["--watts", "-5"], "argument --watts", id="lost-bad-watts"),
    pytest.param(["--hardware", "tpu-v9"], "--hardware: ", id="lost-bad-hardware"),
    pytest.param(["--seed", "-1"], "argument --seed", id="seed-negative"),
    pytest.param(["--method", "moco"], "argument --method", id="unknown-method"),
    pytest.param(["--model", "vit-x"], "argument --model", id="unknown-model"),
    pytest.param(["--dataset", "imagenet9"], "--dataset: ", id="unknown-dataset"),
    pytest.param(["--set", "method.foo=1"], "--set method.foo", id="set-unknown-field"),
    pytest.param(["--resume"], "--resume: ", id="silent-resume-of-a-non-run"),
    pytest.param(["--resume-from", "5"], "--resume-from 5 needs --resume", id="resume-from-without-resume"),
])
def test_pretrain(capsys, tmp_path, flags, named):
    out = tmp_path / "run"
    fails(capsys, pretrain.main([*PRE, "--out", str(out), *flags]), named)
    assert not out.exists() and not (tmp_path / "data-dir").exists()  # no run folder, no dataset built


def test_pretrain_refuses_to_overwrite_a_run(capsys, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    fails(capsys, pretrain.main([*PRE, "--out", str(tmp_path / "run")]), "--out ", "already holds a run")
    assert (tmp_path / "run" / "config.json").read_text() == "{}"


def test_pretrain_corrupt_dataset_info_names_the_file(capsys, tmp_path, tiny_data):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_data / "fmnist_objects" / "1.0.0", broken)
    (broken / "dataset_info.json").write_text("{ not json")
    fails(capsys, pretrain.main([*PRE[:4], "--dataset", str(broken), *PRE[6:], "--out", str(tmp_path / "run")]),
          "--dataset: ", f"{broken}/dataset_info.json is not a valid")
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------------------------- finetune_seg
SEG = ["--dataset", "fmnist_scenes", "--steps", "2", "--batch", "4", "--image-size", "32"]


@pytest.mark.parametrize(("encoder", "flags", "named"), [
    pytest.param("scratch", [], "--model", id="scratch-without-model"),
    pytest.param("weights.pth", ["--model", "vit-test"], "--encoder: ", id="unknown-encoder-kind"),
    pytest.param("missing.npz", ["--model", "vit-test"], "missing.npz", id="missing-npz"),
    pytest.param("scratch", ["--model", "vit-test", "--steps", "0"], "argument --steps", id="steps-0"),
    pytest.param("scratch", ["--model", "vit-test", "--image-size", "0"], "argument --image-size", id="image-size-0"),
    pytest.param("scratch", ["--model", "vit-test", "--image-size", "30"], "--image-size 30: ",
                 id="image-size-not-a-patch-multiple"),
    pytest.param("scratch", ["--model", "vit-test", "--lr", "0"], "argument --lr", id="lr-0"),
    pytest.param("scratch", ["--model", "vit-test", "--grid", "--wd", "0.1"], "--grid", id="grid-and-wd"),
    pytest.param("scratch", ["--model", "vit-test", "--resume"], "--resume", id="lost-resume-without-runs"),
    pytest.param("scratch", ["--model", "vit-test", "--dataset", "ade20k"], "--dataset: ", id="dataset-not-built"),
])
def test_finetune_seg(capsys, tmp_path, encoder, flags, named):
    out = tmp_path / "seg"
    fails(capsys, finetune_seg.main(["--encoder", encoder, *SEG, "--out", str(out), *flags]), named)
    assert not out.exists() and not (tmp_path / "data-dir").exists()


@pytest.mark.parametrize(("drop", "damage", "named"), [
    pytest.param("summary.json", None, "--allow-unknown-flops", id="silent-run-without-summary"),
    pytest.param(None, {"encoder.eqx": b"\0" * 64}, "encoder.eqx is not a valid encoder weights file",
                 id="corrupt-encoder-eqx"),
    pytest.param(None, {"encoder.eqx": b""}, "(the file ends early: truncated?)", id="empty-encoder-eqx"),
    pytest.param(None, {"encoder.json": b"{"}, "encoder.json is not a valid encoder config", id="corrupt-encoder-json"),
    pytest.param(None, {"summary.json": b"[]"}, "summary.json", id="corrupt-summary"),
])
def test_finetune_seg_encoder_run_files(capsys, tmp_path, tiny_data, encoder_run, drop, damage, named):
    run = _copy_run(encoder_run, tmp_path, drop=drop, damage=damage)
    out = tmp_path / "seg"
    fails(capsys, finetune_seg.main(["--encoder", str(run), *SEG, "--data-dir", str(tiny_data), "--out", str(out)]),
          named)
    assert not out.exists()


@pytest.mark.parametrize(("name", "content", "named"), [
    pytest.param("w.npz", b"not a zip" * 10, "w.npz is not a valid .npz weights file (not a zip archive",
                 id="corrupt-npz"),
    pytest.param("w.safetensors", b"\x10" * 64, "w.safetensors is not a valid .safetensors file",
                 id="corrupt-safetensors"),
    pytest.param("other.npz", None, "other.npz is not a valid timm checkpoint of vit-test", id="npz-of-another-model"),
])
def test_finetune_seg_timm_files(capsys, tmp_path, tiny_data, name, content, named):
    path = tmp_path / name
    if content is None:
        np.savez(path, **{"cls_token": np.zeros((1, 1, 8), np.float32)})
    else:
        path.write_bytes(content)
    fails(capsys, finetune_seg.main(["--encoder", str(path), "--model", "vit-test", *SEG, "--data-dir",
                                     str(tiny_data), "--out", str(tmp_path / "seg")]), named)
    assert not (tmp_path / "seg").exists()


def test_finetune_seg_refuses_to_overwrite_a_result(capsys, tmp_path):
    (tmp_path / "seg").mkdir()
    (tmp_path / "seg" / "result.json").write_text("{}")
    fails(capsys, finetune_seg.main(["--encoder", "scratch", "--model", "vit-test", *SEG,
                                     "--out", str(tmp_path / "seg")]), "--out", "already holds result.json")


# -------------------------------------------------------------------------------------------- profile_flops
PROFILE = ["--method", "mae", "--model", "vit-test", "--batch", "2"]


@pytest.mark.parametrize(("argv", "named"), [
    pytest.param([*PROFILE[:4], "--batch", "0"], "argument --batch", id="batch-0"),
    pytest.param(PROFILE[:4], "--batch is required", id="batch-missing"),
    pytest.param(["--method", "simclr", *PROFILE[2:], "--mask-ratio", "0.5"], "--mask-ratio does not apply",
                 id="silent-flag-that-does-not-apply"),
    pytest.param([*PROFILE, "--mask-ratio", "1.5"], "argument --mask-ratio", id="mask-ratio-out-of-range"),
    pytest.param([*PROFILE, "--image-size", "0"], "argument --image-size", id="image-size-0"),
    pytest.param([*PROFILE, "--image-size", "20"], "--image-size 20: ", id="image-size-not-a-patch-multiple"),
    pytest.param(["--table", "--out", "{file}"], "--out {file} is a file", id="lost-table-out-is-a-file"),
    pytest.param(["--table", "--batch", "8"], "--table", id="table-with-step-flags"),
])
def test_profile_flops(capsys, tmp_path, argv, named):
    file = tmp_path / "taken"
    file.write_text("")
    argv = [a.format(file=file) for a in argv]
    fails(capsys, profile_flops.main(argv), named.format(file=file))


# ------------------------------------------------------------------------------------------- report and plan
def _results(root: Path, rows: list[str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    header = "method,variant,backbone,pretrain_dataset,pretrain_steps,pretrain_flops,task,seed,score,status"
    (root / "results.csv").write_text("\n".join([header, *rows]) + "\n")
    return root


GOOD = ["mae,,vit-b16,i1k,100,1e15,seg,0,40,done", "mae,,vit-b16,i1k,400,4e15,seg,0,45,done",
        "scratch,,vit-b16,,0,0,seg,0,20,done"]


@pytest.mark.parametrize(("rows", "flags", "named"), [
    pytest.param(GOOD, ["--reach", "1.5"], "argument --reach", id="reach-out-of-range"),
    pytest.param(GOOD, ["--chips", "0"], "argument --chips", id="chips-0"),
    pytest.param(GOOD, ["--figure3", "{root}/results.csv"], "--figure3 ", id="figure3-not-its-json"),
    pytest.param(["mae,,vit-b16,i1k,100,1e15,seg,0,500,done"], [], "score='500' is out of range",
                 id="silent-score-500"),
    pytest.param(["mae,,vit-b16,i1k,100,-1e15,seg,0,40,done"], [], "pretrain_flops='-1e15' is out of range",
                 id="silent-negative-flops"),
])
def test_report(capsys, tmp_path, rows, flags, named):
    root = _results(tmp_path / "sweep", rows)
    flags = [f.format(root=root) for f in flags]
    fails(capsys, report.main([str(root), "--out", str(tmp_path / "report"), *flags]), named)
    assert not (tmp_path / "report").exists()


def test_report_missing_results_and_a_folder_it_must_not_replace(capsys, tmp_path):
    fails(capsys, report.main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")]), str(tmp_path / "nowhere"))
    root = _results(tmp_path / "sweep", GOOD)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    fails(capsys, report.main([str(root), "--out", str(tmp_path / "mine")]), str(tmp_path / "mine"), "notes.txt")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


@pytest.mark.parametrize(("flags", "named"), [
    pytest.param(["--budget", "3e18x"], "--budget '3e18x'", id="budget-unit"),
    pytest.param(["--budget", "1e16", "--region", "mars"], "region='mars'", id="unknown-region"),
    pytest.param(["--budget", "1e16", "--chips", "0"], "argument --chips", id="chips-0"),
    pytest.param(["--budget", "1e16", "--mfu", "2"], "argument --mfu", id="mfu-above-1"),
])
def test_plan(capsys, tmp_path, flags, named):
    fails(capsys, plan.main([str(_results(tmp_path / "sweep", GOOD)), *flags]), named)


# -------------------------------------------------------------------------------- build_dataset, contact_sheet
@pytest.mark.parametrize(("argv", "named"), [
    pytest.param(["imagenet9"], "argument name: invalid choice: 'imagenet9'", id="unknown-name"),
    pytest.param(["fmnist_scenes", "--num-examples", "0"], "argument --num-examples", id="num-examples-0"),
    pytest.param(["fmnist_scenes", "--image-size", "-3"], "argument --image-size", id="image-size-negative"),
    pytest.param(["ade20k", "--image-size", "32"], "ade20k takes the options", id="option-not-taken"),
    pytest.param(["ade20k", "--source", "{tmp}/nowhere"], "{tmp}/nowhere", id="missing-source"),
])
def test_build_dataset(capsys, tmp_path, argv, named):
    argv = [a.format(tmp=tmp_path) for a in argv] + ["--data-dir", str(tmp_path / "out")]
    fails(capsys, build_dataset.main(argv), named.format(tmp=tmp_path))
    assert not any((tmp_path / "out").rglob("dataset_info.json"))


@pytest.mark.parametrize(("argv", "named"), [
    pytest.param(["--count", "0"], "argument --count", id="count-0"),
    pytest.param(["--out", "{tmp}/sheet.jpg"], "--out {tmp}/sheet.jpg: expected a .png", id="not-png"),
    pytest.param(["--directory", "{tmp}/nowhere"], "--directory {tmp}/nowhere", id="missing-directory"),
    pytest.param(["--directory", "{scenes}", "--count", "9"], "count=9", id="more-than-the-split-holds"),
])
def test_contact_sheet(capsys, tmp_path, tiny_data, argv, named):
    fmt = {"tmp": tmp_path, "scenes": tiny_data / "fmnist_scenes" / "1.0.0"}
    argv = [a.format(**fmt) for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "sheet.png")]
    fails(capsys, contact_sheet.main(argv), named.format(**fmt))
    assert not (tmp_path / "sheet.png").exists() and not (tmp_path / "data-dir").exists()


# ----------------------------------------------------------------------------------------------- sweep, demo
@pytest.mark.parametrize(("argv", "named"), [
    pytest.param(["--config", CONFIG, "--config.budgetz=1"], "--config.budgetz: no such field", id="unknown-field"),
    pytest.param(["--config", CONFIG, "--config.datasets=('missing_set',)"], "config.datasets: dataset "
                 "'missing_set'", id="unknown-dataset"),
    pytest.param(["--config", "{tmp}/nowhere.py"], "nowhere.py", id="missing-config"),
    pytest.param([], "--config is required", id="no-config"),
    pytest.param(["--config", CONFIG, "--workers", "-1"], "argument --workers", id="workers-negative"),
    pytest.param(["--config", CONFIG, "--bogus"], "unrecognized arguments: --bogus", id="unknown-flag"),
    pytest.param(["--table-only"], "--out ", id="table-only-without-a-sweep"),
])
def test_sweep(capsys, tmp_path, argv, named):
    argv = [a.format(tmp=tmp_path) for a in argv]
    fails(capsys, sweep.main([*argv, "--out", str(tmp_path / "out")]), named)
    assert not (tmp_path / "out" / "runs").exists()


@pytest.mark.parametrize(("argv", "named"), [
    pytest.param(["--config.budgetz=1"], "--config.budgetz: no such field", id="unknown-field"),
    pytest.param(["--config.methods=('moco',)"], "moco", id="unknown-method"),
    pytest.param(["--config", "{tmp}/nowhere.py"], "--config {tmp}/nowhere.py: no such file", id="missing-config"),
    pytest.param(["--workers", "-1"], "argument --workers", id="workers-negative"),
    pytest.param(["--bogus"], "unrecognized arguments: --bogus", id="unknown-flag"),
])
def test_demo(capsys, tmp_path, argv, named):
    argv = [a.format(tmp=tmp_path) for a in argv]
    argv = [*argv, "--config", CONFIG] if "--config" not in argv else argv
    fails(capsys, demo.main([*argv, "--out", str(tmp_path / "demo")]), named.format(tmp=tmp_path))
    assert not (tmp_path / "demo").exists()


# ---------------------------------------------------------------------------------------- python -m flopmeter
@pytest.mark.parametrize(("argv", "named"), [
    pytest.param(["jax.numpy.matmul"], "target 'jax.numpy.matmul'", id="not-module-colon-function"),
    pytest.param(["no_such_module:f"], "cannot import module 'no_such_module'", id="module-missing"),
    pytest.param(["jax.numpy:no_such_fn"], "no attribute 'no_such_fn'", id="function-missing"),
    pytest.param(["jax.numpy:tanh", "--arg-shapes", "f32(8)"], "--arg-shapes: arg shape 'f32(8)'", id="bad-shape"),
    pytest.param(["jax.numpy:tanh", "--arg-shapes", "q7[8]"], "unknown dtype 'q7'", id="bad-dtype"),
])
def test_flopmeter(capsys, argv, named):
    fails(capsys, flopmeter_cli.main(argv), named)


# ------------------------------------------------------------------------ the real entry points (subprocesses)
@pytest.mark.parametrize(("command", "named"), [
    pytest.param([sys.executable, str(ROOT / "tools" / "pretrain.py"), *PRE, "--steps", "0"], "argument --steps",
                 id="tools-shim"),
    pytest.param([sys.executable, "-m", "flopmeter", "jax.numpy.matmul"], "target 'jax.numpy.matmul'",
                 id="python-m-flopmeter"),
    pytest.param([sys.executable, "-m", "flopstudy.cli.flopwise", "profile", "--batch", "0"],
                 "argument --batch", id="flopwise-umbrella"),
])
def test_entry_points(tmp_path, command, named):
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [done.stderr.splitlines()[-1]] and done.stderr.startswith("error: ")
    assert named in done.stderr and "Traceback" not in done.stderr


# ------------------------------------------------- resuming a different run (real runs: a few compiled steps)
@pytest.mark.slow  # one real pre-training (2 steps) and one real fine-tuning (2 steps): ~1 min on 2 shared cores
def test_silent_resume_with_changed_arguments_is_refused_listing_each_field(capsys, tmp_path, tiny_data):
    objects = str(tiny_data / "fmnist_objects" / "1.0.0")
    run = tmp_path / "pre"
    base = ["--method", "supervised", "--model", "vit-test", "--dataset", objects, "--steps", "2", "--batch", "4",
            "--image-size", "16", "--log-every", "1", "--out", str(run)]
    assert pretrain.main(base) == 0
    summary = (run / "summary.json").read_text()
    # issue 12: a resumed pre-training accepted a changed --batch and wrote FLOPs below the steps already done
    changed = [a if a != "4" else "8" for a in base]
    fails(capsys, pretrain.main([*changed, "--resume"]), "--resume: ", "train.batch_size: 4 -> 8")
    assert (run / "summary.json").read_text() == summary
    seg = tmp_path / "seg"
    tune = ["--dataset", "fmnist_scenes", "--data-dir", str(tiny_data), "--steps", "2", "--batch", "4",
            "--image-size", "32", "--out", str(seg)]
    assert finetune_seg.main(["--encoder", str(run), *tune]) == 0
    result = (seg / "result.json").read_text()
    # issue 12: a resumed fine-tune accepted another --encoder and labelled the old mIoU with the new encoder
    fails(capsys, finetune_seg.main(["--encoder", "scratch", "--model", "vit-test", *tune, "--resume"]),
          "--resume: ", 'encoder: "', '" -> "scratch"')
    assert (seg / "result.json").read_text() == result

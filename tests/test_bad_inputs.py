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
from flopstudy.cli import demo, plan, report, sweep, sweep_flops
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
    pytest.param("scratch", ["--model", "vit-test", "--augment", "gpu"], "argument --augment", id="augment-unknown"),
    pytest.param("scratch", ["--model", "vit-test", "--augment", "device", "--photometric", "byol"],
                 "augment='device' with photometric='byol'", id="augment-device-with-jitter"),
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
    pytest.param([*PROFILE, "--mask-ratio", "0.999999"], "--mask-ratio 0.999999: mask_ratio=0.999999 keeps none",
                 id="mask-ratio-keeps-no-patch"),
    pytest.param(["--method", "mae", "--model", "vit-test", "--batch", "1e999"], "argument --batch",
                 id="batch-1e999"),
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


# ================================================================ issue 25: user code, inputs, sweep values
# ------------------------------------------------------------------------------- user code that raises
_USER_METHODS = {
    "raises_at_import": "raise RuntimeError('boom at import')\n",
    "asserts_at_import": "assert False, 'module assertion'\n",
    "divides_at_import": "x = 1 / 0\n",
    "init_raises": ("from sslmethods.methods.simclr import SimCLR\n\n\nclass Bad(SimCLR):\n"
                    "    def __check_init__(self):\n        raise RuntimeError('init boom')\n"),
    "init_keyerror": ("from sslmethods.methods.simclr import SimCLR\n\n\nclass Bad(SimCLR):\n"
                      "    def __check_init__(self):\n        raise KeyError('missing key')\n"),
}


@pytest.fixture
def user_modules(tmp_path, monkeypatch) -> str:
    """A folder on sys.path with the user's method modules of `_USER_METHODS`, each named ``u25_<key>``."""
    folder = tmp_path / "usercode"
    folder.mkdir()
    for name, text in _USER_METHODS.items():
        (folder / f"u25_{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(folder))
    for name in _USER_METHODS:
        sys.modules.pop(f"u25_{name}", None)
    return str(folder)


@pytest.mark.parametrize(("method", "named"), [
    pytest.param("u25_raises_at_import:X", ["u25_raises_at_import", "RuntimeError: boom at import"],
                 id="module-raises-runtimeerror-at-import"),
    pytest.param("u25_asserts_at_import:X", ["u25_asserts_at_import", "AssertionError: module assertion"],
                 id="module-raises-assertionerror-at-import"),
    pytest.param("u25_divides_at_import:X", ["u25_divides_at_import", "ZeroDivisionError"],
                 id="module-raises-zerodivision-at-import"),
    pytest.param("u25_init_raises:Bad", ["--method", "u25_init_raises:Bad", "RuntimeError: init boom"],
                 id="method-init-raises-runtimeerror"),
    pytest.param("u25_init_keyerror:Bad", ["--method", "u25_init_keyerror:Bad", "KeyError: 'missing key'"],
                 id="method-init-raises-keyerror"),
])
def test_pretrain_user_method_raises(capsys, tmp_path, user_modules, method, named):
    out = tmp_path / "run"
    fails(capsys, pretrain.main([*PRE[:2], *PRE[2:], "--method", method, "--out", str(out)]), *named)
    assert not out.exists() and not (tmp_path / "data-dir").exists()


@pytest.mark.parametrize("method", ["u25_raises_at_import:X", "u25_init_raises:Bad"])
def test_debug_shows_the_user_code_traceback(capsys, tmp_path, user_modules, method):
    code = pretrain.main([*PRE, "--method", method, "--out", str(tmp_path / "run"), "--debug"])
    err = capsys.readouterr().err
    assert code == 2 and err.splitlines()[-1].startswith("error: ") and "Traceback" in err, err
    assert "boom" in err.split("error: ")[0], err  # the user's own raise is in the traceback, above the line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("method", "named"), [
    pytest.param("u25_raises_at_import:X", "RuntimeError: boom at import", id="module-raises"),
    pytest.param("u25_init_raises:Bad", "RuntimeError: init boom", id="init-raises"),
])
def test_profile_user_method_raises(capsys, user_modules, method, named):
    fails(capsys, profile_flops.main(["--method", method, *PROFILE[2:]]), method.partition(":")[0], named)


_CONFIGS = {
    "syntax": "def get_config(:\n",
    "get_config_raises": "def get_config(arg=None):\n    raise KeyError('nope')\n",
    "imports_missing": "import not_a_module_u25\n\n\ndef get_config(arg=None):\n    return None\n",
    "raises_at_import": "raise RuntimeError('config import boom')\n",
    "arg_raises": "def get_config(arg=None):\n    return {'a': 1}[arg]\n",
}


@pytest.mark.parametrize(("name", "arg", "named"), [
    pytest.param("syntax", "", "SyntaxError", id="config-syntax-error"),
    pytest.param("get_config_raises", "", "get_config() of", id="config-get-config-raises"),
    pytest.param("imports_missing", "", "ModuleNotFoundError: No module named 'not_a_module_u25'",
                 id="config-imports-a-missing-module"),
    pytest.param("raises_at_import", "", "RuntimeError: config import boom", id="config-raises-at-import"),
])
@pytest.mark.parametrize("command", [sweep.main, demo.main, sweep_flops.main], ids=["sweep", "demo", "sweep-flops"])
def test_config_file_raises(capsys, tmp_path, name, arg, named, command):
    path = tmp_path / f"{name}.py"
    path.write_text(_CONFIGS[name])
    out = tmp_path / "out"
    fails(capsys, command(["--config", f"{path}{arg}", "--out", str(out)]), "--config ", str(path), named)
    assert not out.exists()


def test_config_file_get_config_raises_for_its_argument(capsys, tmp_path):
    path = tmp_path / "arg_raises.py"
    path.write_text(_CONFIGS["arg_raises"])
    fails(capsys, sweep.main(["--config", f"{path}:zz", "--out", str(tmp_path / "out")]), str(path),
          "get_config('zz')", "KeyError: 'zz'")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------- sweep values at load time
@pytest.mark.parametrize(("override", "named"), [
    pytest.param("tasks.segmentation.steps=0", "config.tasks.segmentation: steps=0", id="seg-steps-0"),
    pytest.param("tasks.segmentation.epochs=0.0", "config.tasks.segmentation", id="seg-epochs-0"),
    pytest.param("tasks.segmentation.lrs=(-1.0,)", "config.tasks.segmentation: lrs=(-1.0,)", id="seg-lrs-negative"),
    pytest.param("tasks.segmentation.wds=(-0.1,)", "config.tasks.segmentation: wds=", id="seg-wds-negative"),
    pytest.param("tasks.segmentation.warmup=-5", "config.tasks.segmentation: warmup=-5", id="seg-warmup-negative"),
    pytest.param("tasks.segmentation.sam_rho=-1.0", "config.tasks.segmentation: sam_rho", id="seg-sam-negative"),
    pytest.param("tasks.segmentation.sam_shards=2", "config.tasks.segmentation: sam_shards=2: per-device SAM needs "
                 "sam_rho", id="seg-sam-shards-without-rho"),
    pytest.param("tasks.segmentation.photometric='zzz'", "photometric='zzz'", id="seg-photometric-unknown"),
    pytest.param("tasks.segmentation.eval_mode='zzz'", "eval_mode='zzz'", id="seg-eval-mode-unknown"),
    pytest.param("tasks.segmentation.augment='gpu'", "augment='gpu'", id="seg-augment-unknown"),
    pytest.param("tasks.segmentation.workers=-1", "config.tasks.segmentation: workers=-1", id="seg-workers-neg"),
    pytest.param("pretrain.log_every=0", "config.pretrain: log_every=0", id="log-every-0"),
    pytest.param("pretrain.checkpoint_every=0", "config.pretrain: checkpoint_every=0", id="checkpoint-every-0"),
    pytest.param("pretrain.eval_every=-1", "config.pretrain: eval_every=-1", id="eval-every-negative"),
    pytest.param("pretrain.workers=-1", "config.pretrain: workers=-1", id="pretrain-workers-negative"),
    pytest.param("pretrain.watts=-5", "config.pretrain: watts=-5", id="watts-negative"),
    pytest.param("seed=-1", "config.seed=-1", id="seed-negative"),
    pytest.param("knn_bank=-1", "config.knn_bank=-1", id="knn-bank-negative"),
    pytest.param("knn_query=-3", "config.knn_query=-3", id="knn-query-negative"),
    pytest.param("image_size=0", "config.image_size=0", id="image-size-0"),
    pytest.param("name=''", "config.name=''", id="empty-name"),
    pytest.param("budgets=(1e999,)", "config.budgets: inf; expected positive flops", id="budget-1e999-flops"),
    pytest.param("co2.chips=0", "config.co2: chips=0", id="co2-chips-0"),
    pytest.param("co2.fit_a=-1.0", "config.co2: fit_a=-1.0", id="co2-fit-a-negative"),
    pytest.param("per_method.supervised.batch=0", "config.per_method.supervised: batch=0", id="per-method-batch-0"),
    pytest.param("per_method.supervised.budgets=(1e999,)", "config.per_method.supervised.budgets: inf",
                 id="per-method-budget-1e999"),
    pytest.param("prepretrain.budgets=(1e999,)", "config.prepretrain.budgets: inf", id="prepretrain-budget-1e999"),
    pytest.param("prepretrain.batch=0", "config.prepretrain: batch=0", id="prepretrain-batch-0"),
    pytest.param("per_method={'maee': {'batch': None}}", "config.per_method.maee: not a method of this sweep",
                 id="silent-per-method-unknown-key-at-defaults"),
    pytest.param("per_method={'maee': {'batch': 8}}", "config.per_method.maee: not a method of this sweep",
                 id="per-method-unknown-key"),
    pytest.param("build_datasets={'nope': {'num_examples': 3}}", "config.build_datasets.nope: not a dataset builder",
                 id="build-datasets-unknown-builder"),
    pytest.param("build_datasets={'fmnist_scenes': {'num_exmples': 3}}",
                 "config.build_datasets.fmnist_scenes: num_exmples not an option", id="build-datasets-unknown-option"),
    pytest.param("tasks.segmentation.batch=0", "config.tasks.segmentation: batch=0", id="seg-batch-0"),
    pytest.param("confirm_seeds=-1", "config.confirm_seeds=-1", id="confirm-seeds-negative"),
])
def test_sweep_values_checked_when_the_config_loads(capsys, tmp_path, override, named):
    out = tmp_path / "out"
    fails(capsys, sweep.main(["--config", CONFIG, f"--config.{override}", "--out", str(out)]), named)
    assert not out.exists() and not (tmp_path / "data-dir").exists()


def test_sweep_budget_1e999_steps_is_refused(capsys, tmp_path):
    fails(capsys, sweep.main(["--config", CONFIG, "--config.budget_unit=steps", "--config.budgets=(1e999,)",
                              "--out", str(tmp_path / "out")]), "config.budgets: inf; expected positive steps")
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- inputs that tracebacked
def _coco(root: Path, annotation: dict, image: dict | None = None, text: str | None = None) -> Path:
    (root / "annotations").mkdir(parents=True)
    data = {"images": [image or {"id": 1, "file_name": "a.jpg", "height": 4, "width": 4}],
            "annotations": [annotation], "categories": [{"id": 1, "name": "thing"}]}
    for split in ("train2017", "val2017"):
        (root / "annotations" / f"instances_{split}.json").write_text(text if text is not None else
                                                                       __import__("json").dumps(data))
    return root


_ANNOTATION = {"id": 7, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "area": 4,
               "segmentation": [[0, 0, 2, 0, 2, 2]]}


@pytest.mark.parametrize(("annotation", "image", "text", "named"), [
    pytest.param({k: v for k, v in _ANNOTATION.items() if k != "bbox"}, None, None, "annotation id 7 has no 'bbox'",
                 id="coco-annotation-without-bbox"),
    pytest.param({k: v for k, v in _ANNOTATION.items() if k != "segmentation"}, None, None,
                 "annotation id 7 has no 'segmentation'", id="coco-annotation-without-segmentation"),
    pytest.param({k: v for k, v in _ANNOTATION.items() if k != "category_id"}, None, None,
                 "annotation id 7 has no 'category_id'", id="coco-annotation-without-category"),
    pytest.param(_ANNOTATION, {"id": 1, "height": 4, "width": 4}, None, "image id 1 has no 'file_name'",
                 id="coco-image-without-file-name"),
    pytest.param(_ANNOTATION, None, "{\n\n", "is not valid JSON", id="coco-json-invalid"),
    pytest.param(_ANNOTATION, None, "[]", "holds a JSON list", id="coco-json-a-list"),
])
def test_build_coco_bad_annotations_name_the_file(capsys, tmp_path, annotation, image, text, named):
    source = _coco(tmp_path / "coco", annotation, image, text)
    fails(capsys, build_dataset.main(["coco_instances", "--source", str(source), "--data-dir", str(tmp_path / "o")]),
          "instances_train2017.json", named)
    assert not any((tmp_path / "o").rglob("dataset_info.json"))


@pytest.mark.parametrize(("table", "named"), [
    pytest.param("image,label\n", "train.csv' holds no rows", id="image-folder-csv-header-only"),
    pytest.param("", "train.csv' has no 'image' column", id="image-folder-csv-empty"),
    pytest.param("picture,label\na.png,x\n", "train.csv' has no 'image' column", id="image-folder-csv-no-image-column"),
])
def test_build_image_folder_bad_table_names_the_file(capsys, tmp_path, table, named):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.csv").write_text(table)
    fails(capsys, build_dataset.main(["image_folder", "--source", str(tmp_path / "src"), "--data-dir",
                                      str(tmp_path / "o")]), named)
    assert not any((tmp_path / "o").rglob("dataset_info.json"))


def test_pretrain_batch_beyond_memory_is_refused_before_compiling(capsys, tmp_path):
    out = tmp_path / "run"
    line = fails(capsys, pretrain.main([*PRE[:8], "--batch", "100000000", "--out", str(out)]), "--batch 100000000: ",
                 "GiB")
    assert "needs at least" in line
    assert not out.exists() and not (tmp_path / "data-dir").exists()


def test_check_fits_memory_against_a_known_available_amount(monkeypatch):
    # independent of the host: the host's MemAvailable replaced by a known 1 GiB
    from runloop import memory

    monkeypatch.setattr(memory, "_host_available_bytes", lambda: 2**30)
    mesh = runloop.make_mesh()
    memory.check_fits_memory(2**30, mesh, option="--batch 8")  # exactly what is available: accepted
    with pytest.raises(ValueError, match=r"^--batch 8: one training step needs at least 1.0 GiB .* offer 1.0 GiB"):
        memory.check_fits_memory(2**30 + 2**20, mesh, option="--batch 8")


# ------------------------------------------------------------------- error lines name their flag or file
@pytest.mark.parametrize(("flags", "named"), [
    pytest.param(["--method", "mae", "--set", "method.mask_ratio=1.5"], "--set method.mask_ratio=1.5: ",
                 id="set-mask-ratio-out-of-range"),
    pytest.param(["--method", "mae", "--model", "nfnet-test"], "--method mae --model nfnet-test: ",
                 id="mae-on-nfnet-creates-nothing"),
    pytest.param(["--method", "mae", "--set", "method.mask_ratio=0.0"], "--set method.mask_ratio=0.0: ",
                 id="set-mask-ratio-zero"),
    pytest.param(["--set", "optim.lr=-1.0"], "--set optim.lr=-1.0: ", id="set-lr-negative"),
    pytest.param(["--set", "model.depth=0"], "--set model.depth=0: ", id="set-depth-0"),
    pytest.param(["--method", "mae", "--set", "method.decoder=zzz"], "--set method.decoder=zzz: ",
                 id="set-decoder-unknown"),
    pytest.param(["--method", "dino", "--set", "method.student_temp=-1.0"], "--set method.student_temp=-1.0: ",
                 id="set-dino-temperature-negative"),
    pytest.param(["--set", "optim.clip_norm=-1.0"], "--set optim.clip_norm=-1.0: ", id="set-clip-norm-negative"),
    pytest.param(["--set", "model.num_heads=5"], "--set model.num_heads=5: ", id="set-heads-not-dividing-width"),
    pytest.param(["--steps", "1e999"], "argument --steps", id="steps-1e999"),
])
def test_pretrain_method_errors_name_the_flag_and_build_nothing(capsys, tmp_path, flags, named):
    out = tmp_path / "run"
    argv = [*PRE, "--out", str(out)]
    for flag, value in zip(flags[::2], flags[1::2], strict=True):
        if flag in argv and flag != "--set":
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    fails(capsys, pretrain.main(argv), named)
    assert not out.exists() and not (tmp_path / "data-dir").exists()  # no dataset built into the empty data dir


def test_finetune_det_bad_image_size_creates_nothing(capsys, tmp_path):
    from segtransfer.cli import finetune_det

    out = tmp_path / "det"
    fails(capsys, finetune_det.main(["--encoder", "scratch", "--model", "vit-test", "--dataset", "fmnist_scenes",
                                     "--steps", "2", "--batch", "4", "--image-size", "30", "--out", str(out)]),
          "--image-size 30: ")
    assert not out.exists() and not (tmp_path / "data-dir").exists()


# ---------------------------------------------------------------------------- --tensorboard without its extra
@pytest.mark.parametrize("command", ["pretrain", "finetune-seg"])
def test_tensorboard_without_the_extra_names_the_flag_and_the_extra(capsys, tmp_path, monkeypatch, command):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # importlib.util.find_spec -> None: "not installed"
    out = tmp_path / "run"
    if command == "pretrain":
        code = pretrain.main([*PRE, "--tensorboard", "--out", str(out)])
    else:
        code = finetune_seg.main(["--encoder", "scratch", "--model", "vit-test", *SEG, "--tensorboard",
                                  "--out", str(out)])
    fails(capsys, code, "--tensorboard: ", "runloop[tensorboard]")
    assert not out.exists() and not (tmp_path / "data-dir").exists()


def test_finetune_seg_image_size_checked_against_the_runs_model_before_creating_out(capsys, tmp_path, tiny_data,
                                                                                    encoder_run):
    out = tmp_path / "seg"
    argv = ["--encoder", str(encoder_run), "--dataset", "fmnist_scenes", "--data-dir", str(tiny_data), "--steps", "2",
            "--batch", "4", "--image-size", "30", "--out", str(out)]
    fails(capsys, finetune_seg.main(argv), "--image-size 30: ")
    assert not out.exists()



@pytest.mark.parametrize("name", ["fmnist_scenes", "fmnist_objects"])
def test_build_fmnist_from_a_missing_source_creates_no_data_dir(capsys, tmp_path, name):
    out = tmp_path / "out"
    fails(capsys, build_dataset.main([name, "--source", str(tmp_path / "nowhere"), "--data-dir", str(out)]),
          f"{tmp_path / 'nowhere'}/train-images-idx3-ubyte")
    assert not out.exists()


def test_finetune_seg_batch_beyond_memory_is_refused_before_anything(capsys, tmp_path):
    out = tmp_path / "seg"
    fails(capsys, finetune_seg.main(["--encoder", "scratch", "--model", "vit-test", "--dataset", "fmnist_scenes",
                                     "--steps", "2", "--batch", "100000000", "--out", str(out)]),
          "--batch 100000000: one training step needs at least")
    assert not out.exists() and not (tmp_path / "data-dir").exists()


@pytest.mark.parametrize(("flags", "named"), [
    pytest.param(["--image-size", "30"], "--image-size 30: ", id="image-size-not-a-patch-multiple-of-the-runs-model"),
    pytest.param(["--batch", "100000000"], "--batch 100000000: one training step needs at least",
                 id="batch-beyond-memory"),
])
def test_finetune_det_checks_against_an_encoder_runs_model_before_creating_out(capsys, tmp_path, encoder_run, flags,
                                                                               named):
    from segtransfer.cli import finetune_det

    out = tmp_path / "det"
    argv = ["--encoder", str(encoder_run), "--dataset", "fmnist_scenes", "--steps", "2", "--out", str(out),
            *(flags if "--batch" in flags else ["--batch", "4", *flags])]
    fails(capsys, finetune_det.main(argv), named)
    assert not out.exists() and not (tmp_path / "data-dir").exists()


@pytest.mark.parametrize(("method", "named"), [
    pytest.param("u25_raises_at_import:X", "RuntimeError: boom at import", id="sweep-method-module-raises"),
    pytest.param("u25_asserts_at_import:X", "AssertionError: module assertion", id="sweep-method-module-asserts"),
])
def test_sweep_method_module_that_raises_is_a_config_error(capsys, tmp_path, user_modules, method, named):
    out = tmp_path / "out"
    fails(capsys, sweep.main(["--config", CONFIG, f"--config.methods=('{method}',)", "--out", str(out)]),
          "config.methods: ", method, named)
    assert not out.exists()

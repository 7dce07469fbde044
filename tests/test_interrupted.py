""""Interrupted? Run it again" (issue 12): a command stopped by a signal exits with status 3 and one line saying
how to continue, never 0 with a partial result; the rerun resumes. A real sweep is killed with SIGTERM in a
subprocess and run again; an unfinished demo writes no report and exits 3; a preempted pre-training or
fine-tuning says which flag resumes it."""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import runloop
from flopstudy.cli import demo
from segtransfer.cli import finetune_seg
from sslmethods.cli import pretrain
from sslmethods.pretrain import trainer

ROOT = Path(__file__).resolve().parents[1]

def _kill_me_when(path: Path) -> threading.Thread:
    def wait_then_kill():
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=wait_then_kill, daemon=True)
    thread.start()
    return thread


def test_an_interrupted_demo_exits_3_without_a_report_and_says_how_to_continue(tmp_path, capsys, monkeypatch):
    # The sweep hands back a status with runs left (what a SIGTERM to the sweep leaves): no report, status 3.
    left = SimpleNamespace(done=3, total=5, left=1, running=1, failed=0)
    monkeypatch.setattr(demo, "run_sweep", lambda sweep, out, executor: left)
    out = tmp_path / "demo"
    assert demo.main(["--out", str(out), "--config", str(ROOT / "configs" / "demo.py")]) == 3
    assert capsys.readouterr().err.splitlines()[-1] == (
        "interrupted: the demo stopped with 3/5 runs done (their progress saved; no report yet); run the same "
        "command again to resume")
    assert not (out / "report").exists()


def test_a_preempted_pretraining_exits_3_naming_the_resume_flag(tiny_data, tmp_path, capsys, monkeypatch):
    def preempted(method, optim, data, cfg, **kwargs):
        return runloop.PretrainSummary(method="supervised", model="vit-test", dataset="fmnist_objects",
                                       status="preempted", steps=3, batch_size=4, flops_per_step=None,
                                       total_flops=None), None

    monkeypatch.setattr(trainer, "train_method", preempted)
    out = tmp_path / "run"
    code = pretrain.main(["--method", "supervised", "--model", "vit-test", "--dataset",
                          str(tiny_data / "fmnist_objects" / "1.0.0"), "--steps", "9", "--batch", "4", "--image-size",
                          "16", "--out", str(out)])
    assert code == 3
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"interrupted: pre-training stopped at step 3 of 9 (checkpoint saved in {out}); continue it with the same "
        "command and --resume")


def test_resume_of_a_finished_pretraining_keeps_its_summary_and_fewer_steps_is_an_error(tiny_data, tmp_path,
                                                                                         capsys):
    out = tmp_path / "run"
    argv = ["--method", "supervised", "--model", "vit-test", "--dataset", str(tiny_data / "fmnist_objects" / "1.0.0"),
            "--batch", "4", "--image-size", "16", "--out", str(out), "--eval-every", "2", "--checkpoint-every", "2"]
    assert pretrain.main([*argv, "--steps", "4"]) == 0
    first = json.loads((out / "summary.json").read_text())
    assert first["final_metrics"]["loss"] is not None and [k["step"] for k in first["knn"]] == [2, 4]
    (out / "summary.json").unlink()  # killed after its last checkpoint, before its summary
    assert pretrain.main([*argv, "--steps", "4", "--resume"]) == 0
    again = json.loads((out / "summary.json").read_text())
    assert again["final_metrics"] == first["final_metrics"] and again["knn"] == first["knn"]
    assert (again["steps"], again["total_flops"]) == (first["steps"], first["total_flops"])
    assert pretrain.main([*argv, "--steps", "4", "--resume"]) == 0  # finished: the same summary again
    assert json.loads((out / "summary.json").read_text())["final_metrics"] == first["final_metrics"]
    config = (out / "config.json").read_text()
    capsys.readouterr()
    assert pretrain.main([*argv, "--steps", "2", "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --steps 2: ") and "already trained 4 steps" in err and err.count("\n") == 1
    assert (out / "config.json").read_text() == config  # config.json and summary.json still agree
    assert json.loads((out / "summary.json").read_text())["steps"] == json.loads(config)["train"]["steps"] == 4


def test_a_preempted_finetuning_exits_3_naming_the_resume_flag(tiny_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(finetune_seg, "run_segmentation", lambda *a, **k: {"status": "preempted"})
    out = tmp_path / "seg"
    code = finetune_seg.main(["--encoder", "scratch", "--model", "vit-test", "--dataset", "fmnist_scenes",
                              "--data-dir", str(tiny_data), "--steps", "3", "--batch", "4", "--image-size", "32",
                              "--out", str(out)])
    assert code == 3
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"interrupted: fine-tuning stopped (checkpoint saved in {out}); continue it with the same command and "
        "--resume")


SWEEP = ["--config.methods=('mae',)", "--config.budgets=(120,)", "--config.budget_unit=steps",
         "--config.datasets=('fmnist_objects',)",
         "--config.batch=8", "--config.image_size=32", "--config.scratch=False", "--config.knn_bank=16",
         "--config.knn_query=8", "--config.confirm_seeds=0", "--config.pretrain.log_every=1",
         "--config.pretrain.checkpoint_every=50",
         "--config.build_datasets={'fmnist_objects': {'num_examples': 48}, 'fmnist_scenes': {'num_examples': 16}}",
         "--config.tasks.segmentation.steps=2", "--config.tasks.segmentation.batch=4",
         "--config.tasks.segmentation.image_size=32", "--config.tasks.segmentation.head_channels=8",
         "--config.tasks.segmentation.norm_groups=4"]
FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def _logged_steps(metrics: Path) -> list[int]:
    return [r["step"] for r in map(json.loads, metrics.read_text().splitlines()) if "loss" in r]


@pytest.mark.slow  # two real sweep processes (JAX import, compiles, 120 tiny steps): ~2-3 min on 2 shared cores
@pytest.mark.skipif(not FMNIST.exists(), reason="Fashion-MNIST (Debian dataset-fashion-mnist) is not installed")
def test_sigterm_to_a_real_sweep_exits_3_and_the_same_command_resumes_after_a_move(tmp_path):
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "flopstudy.cli.sweep", "--config", str(ROOT / "configs" / "demo.py"),
               "--out", str(out), *SWEEP]
    env = {**os.environ, "FLOPWISE_JAX_CACHE": str(tmp_path / "jax_cache")}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 400
    metrics = []
    while time.monotonic() < deadline and proc.poll() is None:
        metrics = list(out.glob("runs/*/pretrain/metrics.jsonl"))
        if metrics and metrics[0].stat().st_size > 0:
            break
        time.sleep(0.1)
    assert metrics, "pre-training never started"
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 3, stderr
    assert stderr.splitlines()[-1] == ("interrupted: sweep demo stopped with 0/1 runs done (1 not finished, their "
                                       "progress saved); run the same command again to resume"), stderr
    assert "Traceback" not in stderr
    run_dir = metrics[0].parents[1]
    first = _logged_steps(metrics[0])
    assert not (run_dir / "pretrain" / "summary.json").exists() and first[-1] < 120
    assert not (out / "results.csv").exists() or "done" not in (out / "results.csv").read_text()

    # the folder is moved before the rerun (mv): the paths its runs recorded are relative, so it still resumes
    moved = tmp_path / "moved" / "sweep"
    moved.parent.mkdir()
    out.rename(moved)
    command[command.index("--out") + 1] = str(moved)
    run_dir, metrics = moved / run_dir.relative_to(out), [moved / metrics[0].relative_to(out)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "sweep demo: 1/1 runs done, 0 running, 0 failed, 0 left" in done.stdout
    assert f"resumed {run_dir / 'pretrain'} at step {first[-1]}/120" in done.stderr  # continued, not restarted
    assert _logged_steps(metrics[0]) == list(range(1, 121))  # every step logged once
    summary = json.loads((run_dir / "pretrain" / "summary.json").read_text())
    assert (summary["status"], summary["steps"]) == ("completed", 120)
    assert "done" in (moved / "results.csv").read_text()


@pytest.mark.slow  # spawns two worker processes that import JAX: ~1 min on 2 shared cores
def test_sigterm_to_a_sweep_driver_reaches_its_worker_processes_and_a_rerun_takes_over(tmp_path, monkeypatch):
    import flopcli
    from flopstudy.sweep import LocalExecutor, load_sweep, run_sweep

    monkeypatch.syspath_prepend(str(ROOT / "packages" / "flopstudy" / "tests"))  # spawned workers inherit sys.path
    from _sweep_fakes import FakeStages

    config = {"name": "t", "methods": ("mae",), "backbones": ("vit-test",), "datasets": ("fmnist_objects",),
              "budgets": (100, 200), "batch": 8, "scratch": False,
              "tasks": {"segmentation": {"dataset": "fmnist_scenes", "steps": 3, "lrs": (1e-3,), "wds": (0.05,),
                                         "seeds": 1}}}
    log = tmp_path / "stages.log"
    busy = FakeStages(str(log), sleep=120.0)  # each stage takes 2 minutes: the workers are busy when the signal comes

    def body(args):
        status = run_sweep(load_sweep(config), tmp_path / "out", executor=LocalExecutor(workers=2), stages=busy,
                           log=lambda m: None)
        return 0 if not status.left else 3

    _kill_me_when(log)
    start = time.monotonic()
    assert flopcli.run(flopcli.ArgumentParser(), body, []) == 3
    assert time.monotonic() - start < 60  # did not wait for the workers' 2-minute stages
    deadline = time.monotonic() + 30
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not multiprocessing.active_children()
    status = run_sweep(load_sweep(config), tmp_path / "out", stages=FakeStages(str(log)), log=lambda m: None)
    assert (status.done, status.left, status.failed) == (2, 0, 0)  # the dead workers' claims were taken over

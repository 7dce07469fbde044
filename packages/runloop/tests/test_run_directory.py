"""The run directory: the lock (two processes, stale locks), the same-run check on resume, resume of a non-run."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from runloop import RunInUseError, open_run

SRC = Path(__file__).resolve().parents[1] / "src" / "runloop"
# A second process that takes the lock with runloop.run_lock alone (no JAX import: fast), then waits for stdin.
HOLDER = f"""
import sys
sys.path.insert(0, {str(SRC)!r})
import run_lock
lock = run_lock.RunLock(sys.argv[1]).acquire()
print("locked", flush=True)
if sys.argv[2] == "release":
    sys.stdin.read()
    lock.release()
"""


def _holder(lock_path, mode):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_path), mode], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_process_is_refused_then_admitted(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    proc = _holder(run / "run.lock", "release")
    try:
        with pytest.raises(RunInUseError, match=rf"{run} is in use by another run \(pid {proc.pid} on host .* since "):
            with open_run(run, {"a": 1}, resume=False):
                pass
        assert not (run / "config.json").exists()  # refused before writing anything
    finally:
        proc.communicate("")
    with open_run(run, {"a": 1}, resume=False) as opened:  # the holder released it
        assert json.loads((run / "run.lock").read_text())["pid"] != proc.pid
        assert opened.config == {"a": 1}
    assert not (run / "run.lock").exists()


def test_stale_lock_of_a_dead_process_is_reported_and_taken_over(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    proc = _holder(run / "run.lock", "die")  # exits holding the lock: the kernel drops it, the file stays
    proc.wait(timeout=30)
    assert json.loads((run / "run.lock").read_text())["pid"] == proc.pid
    with pytest.warns(RuntimeWarning, match=rf"taking over a stale lock left by pid {proc.pid} on host"):
        with open_run(run, {"a": 1}, resume=False):
            pass


def test_resume_with_changed_settings_lists_each_field(tmp_path):
    config = {"run": {"model": "vit-test", "dataset": "a"}, "train": {"steps": 10, "batch_size": 8, "lr": 0.1}}
    with open_run(tmp_path, config, resume=False):
        pass
    changed = {"run": {"model": "vit-s16", "dataset": "a"}, "train": {"steps": 20, "batch_size": 16, "lr": 0.1},
               "extra": True}
    with pytest.raises(ValueError) as info:
        with open_run(tmp_path, changed, resume=True, resume_flag="--resume"):
            pass
    message = str(info.value)
    for text in ('--resume: ', 'run.model: "vit-test" -> "vit-s16"', "train.batch_size: 8 -> 16",
                 "train.steps: 10 -> 20", "extra: <absent> -> true"):
        assert text in message, message
    assert "lr" not in message
    # declared as allowed to change: accepted, and the recorded config follows
    more_steps = {**config, "train": {**config["train"], "steps": 20}}
    with open_run(tmp_path, more_steps, resume=True, may_change=("train.steps",)) as opened:
        assert opened.resumed
    assert json.loads((tmp_path / "config.json").read_text())["train"]["steps"] == 20


def test_resume_of_a_non_run_and_start_over_a_run_are_errors(tmp_path):
    with pytest.raises(ValueError, match=r"--resume: .*missing does not exist; there is nothing to resume. Drop "
                                         r"--resume"):
        with open_run(tmp_path / "missing", {}, resume=True, resume_flag="--resume"):
            pass
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"holds no run \(config.json missing\)"):
        with open_run(tmp_path / "other", {}, resume=True):
            pass
    assert not (tmp_path / "missing").exists()
    with open_run(tmp_path / "other", {"a": 1}, resume=False):  # a folder with unrelated files may hold a run
        pass
    with pytest.raises(ValueError, match=r"other already holds a run; pass --resume to continue it"):
        with open_run(tmp_path / "other", {"a": 1}, resume=False, resume_flag="--resume"):
            pass
    with pytest.raises(TypeError, match="PosixPath"):
        with open_run(tmp_path / "new", {"path": tmp_path}, resume=False):
            pass
    assert not (tmp_path / "new").exists()  # the config is checked before the directory is created


def test_a_new_run_that_fails_before_writing_anything_leaves_no_run(tmp_path):
    with pytest.raises(RuntimeError, match="bad first batch"):
        with open_run(tmp_path / "run", {"a": 1}, resume=False) as run:
            (run.checkpoints).mkdir()  # what the checkpointer creates before the first save
            raise RuntimeError("bad first batch")
    assert not (tmp_path / "run").exists()
    with pytest.raises(RuntimeError, match="diverged"):
        with open_run(tmp_path / "run", {"a": 1}, resume=False) as run:
            run.metrics.write_text('{"step": 1}\n')
            raise RuntimeError("diverged")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.json", "metrics.jsonl"]


def test_every_process_checks_before_the_primary_writes(tmp_path, monkeypatch):
    # Multi-host on shared storage: a non-primary process that checked after the primary wrote config.json would
    # refuse the new run. open_run waits for every process between the check and the first write.
    from runloop import run_directory

    seen = []
    monkeypatch.setattr(run_directory, "sync_processes",
                        lambda name: seen.append((name, (tmp_path / "run" / "config.json").exists())))
    with open_run(tmp_path / "run", {"a": 1}, resume=False, primary=False):
        pass
    with open_run(tmp_path / "run", {"a": 1}, resume=False):
        assert (tmp_path / "run" / "config.json").exists()
    assert seen == [(f"runloop.open_run:{tmp_path / 'run'}", False)] * 2

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


def test_paths_are_recorded_relative_so_a_tree_moved_or_copied_whole_resumes(tmp_path):
    import shutil

    root = tmp_path / "sweep"
    (root / "runs" / "a" / "pretrain").mkdir(parents=True)
    (root / "data").mkdir()

    def config(where):
        return {"encoder": str(where / "runs" / "a" / "pretrain"), "task": {"dataset_dir": str(where / "data"),
                                                                           "lr": 1.0}}

    run = root / "runs" / "a" / "tasks" / "t"
    with open_run(run, config(root), resume=False, paths=("encoder", "task.dataset_dir", "task.absent")):
        pass
    recorded = json.loads((run / "config.json").read_text())
    assert recorded == {"encoder": "../../pretrain", "task": {"dataset_dir": "../../../../data", "lr": 1.0}}
    moved = tmp_path / "elsewhere" / "sweep2"
    moved.parent.mkdir()
    shutil.move(root, moved)  # mv
    with open_run(moved / "runs/a/tasks/t", config(moved), resume=True, paths=("encoder", "task.dataset_dir")):
        pass
    copied = tmp_path / "copy"
    shutil.copytree(moved, copied)  # cp -r: the copy resumes too, and names its own files
    with open_run(copied / "runs/a/tasks/t", config(copied), resume=True, paths=("encoder", "task.dataset_dir")):
        pass
    # another place is another run, named in the error
    (copied / "data2").mkdir()
    other = config(copied) | {"task": {"dataset_dir": str(copied / "data2"), "lr": 1.0}}
    with pytest.raises(ValueError, match=r'task.dataset_dir: "../../../../data" -> "../../../../data2"'):
        with open_run(copied / "runs/a/tasks/t", other, resume=True, paths=("encoder", "task.dataset_dir")):
            pass


def test_paths_recorded_absolute_by_older_runs_still_resume_in_place(tmp_path):
    (tmp_path / "enc").mkdir()
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"encoder": str((tmp_path / "enc").resolve()), "lr": 1.0}))
    with open_run(run, {"encoder": str(tmp_path / "enc"), "lr": 1.0}, resume=True, paths=("encoder",)) as opened:
        assert opened.config["encoder"] == "../enc"
    (tmp_path / "enc2").mkdir()
    (run / "config.json").write_text(json.dumps({"encoder": str((tmp_path / "enc").resolve()), "lr": 1.0}))
    with pytest.raises(ValueError, match=r'encoder: "../enc" -> "../enc2"'):
        with open_run(run, {"encoder": str(tmp_path / "enc2"), "lr": 1.0}, resume=True, paths=("encoder",)):
            pass

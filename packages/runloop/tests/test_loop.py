"""The engine end to end on the toy task: one compile, FLOPs of that executable, no per-step host sync, sharded
init, the NaN guard (hint, skip cap, last good checkpoint), stop and resume (also past an unreadable checkpoint)."""

import dataclasses
import glob
import json
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.monitoring
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec

sys.path.insert(0, str(Path(__file__).parent))
import _toys  # noqa: E402
from _toys import ArrayData, arrays, task  # noqa: E402
from runloop import LoopConfig, NonFiniteError, OptionNames, TrainTask, open_run, read_metrics, train  # noqa: E402

QUIET = {"print_progress": False, "measure_flops": False}
CLI = OptionNames(skip_nonfinite="--skip-nonfinite", resume="--resume", resume_from="--resume-from STEP")


def _train(path, cfg, data=None, *, resume=False, **kwargs):
    with open_run(path, {"toy": 1}, resume=resume) as run:
        return train(kwargs.pop("task", None) or task(), data or ArrayData(), cfg, run, log=lambda s: None,
                     **kwargs)


class MatmulData(ArrayData):
    def batch_at(self, index):
        return {"x": np.random.default_rng(index).normal(size=(64, 256)).astype(np.float32)}


def _matmul_task(counter):
    def init():
        return {"w": jnp.eye(256, dtype=jnp.float32)}

    def step(state, batch):  # plain gradient descent on mean((x @ w)^2): the matmuls dominate the FLOPs
        counter.append(1)
        loss, grad = jax.value_and_grad(lambda w: jnp.mean(jnp.square(batch["x"] @ w)))(state["w"])
        return {"w": state["w"] - 1e-3 * grad}, {"loss": loss}

    return TrainTask(init=init, step=step)


def test_step_compiled_once_and_its_flops_measured(tmp_path):
    traces, compiles = [], []
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, _, **kw: compiles.append(kw.get("fun_name")) if name.endswith("backend_compile_duration")
        else None)
    cfg = LoopConfig(steps=12, batch_size=64, log_every=3, checkpoint_every=4, print_progress=False)
    result = _train(tmp_path, cfg, MatmulData(), task=_matmul_task(traces))
    assert len(traces) == 1 and compiles.count("jit(runloop_step)") == 1
    # The executable that ran, over its 4 devices: forward x @ w and the weight gradient x.T @ g, 2 * 64 * 256 * 256
    # FLOPs each (a forward-only count would be half); element-wise work adds < 5%.
    matmuls = 2 * (2 * 64 * 256 * 256)
    assert matmuls <= result.flops_per_step <= 1.05 * matmuls, result.cost
    assert result.cost.num_devices == 4 and result.total_flops == result.flops_per_step * 12 and result.completed


def test_runs_that_differ_only_in_step_args_share_one_program(tmp_path, fresh_compilation_cache):
    """The step's ``step_args`` are data: runs with other values lower to the same program, so the second run reads
    it from the persistent cache (and says so in its log) and still computes with its own value."""

    def step(state, batch, scale):  # w accumulates scale * mean(x): a closed form to check the value used
        return {"w": state["w"] + scale * jnp.mean(batch["x"], axis=0)}, {"loss": jnp.sum(state["w"])}

    logs, results = [], {}
    for name, scale in (("first", 0.5), ("second", -2.0)):
        task = TrainTask(init=lambda: {"w": jnp.zeros(_toys.IN, jnp.float32)}, step=step,
                         step_args=(jnp.float32(scale),))
        with open_run(tmp_path / name, {"toy": name}, resume=False) as run:
            results[name] = train(task, ArrayData(), LoopConfig(steps=3, batch_size=8, **QUIET), run,
                                  log=logs.append)
    assert [results[n].step_source for n in ("first", "second")] == ["compiled", "cache"]
    lines = [line for line in logs if "step program" in line]
    assert lines[0].startswith(f"{tmp_path.name}/first: step program compiled in ")
    assert lines[1].startswith(f"{tmp_path.name}/second: step program read from the compilation cache in ")
    means = sum(ArrayData().batch_at(i)["x"].astype(np.float64).mean(axis=0) for i in range(3))
    for name, scale in (("first", 0.5), ("second", -2.0)):
        np.testing.assert_allclose(np.asarray(results[name].state["w"]), scale * means, rtol=1e-5, atol=1e-6)


def test_no_host_sync_per_step(tmp_path, monkeypatch):
    calls = []
    real = jax.device_get
    monkeypatch.setattr(jax, "device_get", lambda x: calls.append(1) or real(x))
    cfg = LoopConfig(steps=24, batch_size=8, log_every=12, checkpoint_every=24, **QUIET)
    result = _train(tmp_path, cfg)
    # two log syncs (12, 24), one finite check before the final checkpoint; nothing per step
    assert result.step == 24 and len(calls) == 3, len(calls)


def test_init_is_sharded_by_one_jit(tmp_path):
    calls = []

    def init():
        calls.append(1)
        return _toys.init(0)

    cfg = LoopConfig(steps=1, batch_size=8, param_sharding="fsdp", checkpoint_every=10, **QUIET)
    result = _train(tmp_path, cfg, task=task(init=init))
    weight = result.state.model.weight  # (8, 16): split along its 16 columns, 4 per device
    assert weight.sharding.spec == PartitionSpec(None, "data")
    assert {s.data.shape for s in weight.addressable_shards} == {(8, 4)}
    assert len(calls) == 2  # traced once for shapes (eval_shape), once inside the jit: never run eagerly


def test_nonfinite_step_names_the_step_the_good_checkpoint_and_the_flags(tmp_path):
    # batches 0-3 normal, 4-5 diverged (loss ~1e12, finite), 6 NaN: checkpoint 6 is not "good", 4 is
    cfg = LoopConfig(steps=10, batch_size=8, log_every=1, checkpoint_every=2, option_names=CLI, **QUIET)
    with pytest.raises(NonFiniteError, match=r"at step 7 \(.*loss=nan\); last good checkpoint: .*checkpoints/4 "
                                             r"\(step 4, loss .*\)\. .* --resume --resume-from 4, or pass "
                                             r"--skip-nonfinite .*at most 10 in a row"):
        _train(tmp_path, cfg, ArrayData(scale_from=4, nan_from=6))
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]  # nothing logged for the bad step


def test_skip_mode_drops_updates_and_caps_consecutive_skips(tmp_path):
    cfg = LoopConfig(steps=6, batch_size=8, log_every=3, checkpoint_every=3, on_nonfinite="skip", **QUIET)
    spoiled = ArrayData()
    spoiled.batch_at = lambda i, base=spoiled.batch_at: base(i) if i != 2 else ArrayData(nan_from=0).batch_at(i)
    result = _train(tmp_path / "one", cfg, spoiled)
    assert (result.step, result.skipped_steps, int(result.state.step)) == (6, 1, 6)
    capped = LoopConfig(steps=50, batch_size=8, log_every=25, checkpoint_every=2, on_nonfinite="skip",
                        max_consecutive_skips=3, option_names=CLI, **QUIET)
    data = ArrayData(nan_from=4)
    with pytest.raises(NonFiniteError, match=r"3 non-finite steps in a row at step 5 .* with --skip-nonfinite: the "
                                             r"run is not recovering; last good checkpoint: .*checkpoints/4"):
        _train(tmp_path / "capped", capped, data)
    assert data.index <= 4 + 3 + 1  # stopped within the cap (+1: the batch read ahead), not after log_every=25


def test_stop_and_resume_past_an_unreadable_checkpoint_match_an_uninterrupted_run(tmp_path):
    cfg = LoopConfig(steps=9, batch_size=8, log_every=2, checkpoint_every=2, keep_checkpoints=3, **QUIET)
    reference = _train(tmp_path / "ref", cfg)
    stopped = _train(tmp_path / "run", cfg, stop=lambda step: step == 7)
    assert (stopped.status, stopped.step) == ("preempted", 7)
    for name in glob.glob(str(tmp_path / "run" / "checkpoints" / "7" / "state" / "**" / "d" / "*"), recursive=True):
        with open(name, "r+b") as f:
            f.truncate(8)
    with pytest.warns(RuntimeWarning, match=r"checkpoints/7 is unreadable .*falling back to .*checkpoints/6"):
        resumed = _train(tmp_path / "run", cfg, resume=True)
    assert resumed.completed and resumed.step == 9
    for a, b in zip(arrays(reference.state), arrays(resumed.state), strict=True):
        np.testing.assert_array_equal(a, b)
    assert resumed.recent_losses == reference.recent_losses and resumed.final_loss == reference.final_loss
    steps = [r["step"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")]
    assert steps == [2, 4, 6, 8, 9]  # the record of step 7 (lost checkpoint) was dropped on resume
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config == {"toy": 1}
    # --resume-from an older kept checkpoint: the newer ones are dropped and the same steps are redone
    again = _train(tmp_path / "run", dataclasses.replace(cfg, resume_from=6), resume=True)
    assert again.step == 9 and all(np.array_equal(a, b) for a, b in zip(arrays(reference.state), arrays(again.state),
                                                                          strict=True))
    with pytest.raises(ValueError, match="resume_from=2 needs a resumed run"):
        _train(tmp_path / "new", LoopConfig(steps=2, batch_size=8, resume_from=2, **QUIET))


def test_config_errors_come_before_any_side_effect():
    with pytest.raises(ValueError, match="log_every=0"):
        LoopConfig(steps=2, batch_size=8, log_every=0)
    with pytest.raises(ValueError, match="on_nonfinite='ignore'"):
        LoopConfig(steps=2, batch_size=8, on_nonfinite="ignore")
    with pytest.raises(ValueError, match="tpu-v9"):
        LoopConfig(steps=2, batch_size=8, hardware="tpu-v9")
    with pytest.raises(ValueError, match="watts=-1"):
        LoopConfig(steps=2, batch_size=8, watts=-1.0)
    assert eqx.tree_equal(LoopConfig(steps=2, batch_size=8).option_names, OptionNames())


class ShortData(ArrayData):
    def __next__(self):
        if self.index >= 3:
            raise StopIteration
        return super().__next__()


def test_data_that_runs_out_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="the data iterator ran out after 3 of 5 steps; use a repeating pipeline"):
        _train(tmp_path, LoopConfig(steps=5, batch_size=8, **QUIET), ShortData())
    with pytest.raises(TypeError, match=r"data=list lacks \['__next__', 'get_state', 'set_state'\]"):
        _train(tmp_path / "b", LoopConfig(steps=5, batch_size=8, **QUIET), [{"x": 1}])


def _weight_sum(state, step):  # a deterministic eval of the state: equal states give equal records
    return {"w_sum": float(jnp.sum(state.model.weight))}


def _run_with_length(path, cfg, *, resume=False, **kwargs):
    config = {"toy": 1, "steps": cfg.steps}
    with open_run(path, config, resume=resume, may_change=("steps",), loop=cfg) as run:
        return train(task(evaluate=_weight_sum), ArrayData(), cfg, run, log=lambda s: None, **kwargs)


def test_a_run_resumed_at_its_final_step_reports_the_same_final_metrics_and_evals(tmp_path):
    cfg = LoopConfig(steps=6, batch_size=8, log_every=2, checkpoint_every=2, eval_every=2, **QUIET)
    done = _run_with_length(tmp_path / "run", cfg)
    assert done.completed and set(done.final_metrics) >= {"loss", "grad_norm"}
    again = _run_with_length(tmp_path / "run", cfg, resume=True)  # finished, or killed before its summary
    assert again.completed and again.step == 6
    assert again.final_metrics == done.final_metrics and again.final_loss == done.final_loss
    assert again.evals == done.evals and [e["step"] for e in again.evals] == [2, 4, 6]
    # the evaluation of the final step is not run a second time into metrics.jsonl
    assert [r["step"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "w_sum" in r] == [2, 4, 6]


def test_an_eval_on_a_checkpoint_step_survives_a_kill_right_after_that_checkpoint(tmp_path):
    cfg = LoopConfig(steps=8, batch_size=8, log_every=2, checkpoint_every=4, eval_every=2, keep_checkpoints=5,
                     **QUIET)
    reference = _run_with_length(tmp_path / "ref", cfg)
    stopped = _run_with_length(tmp_path / "run", cfg, stop=lambda step: step == 5)
    assert stopped.step == 5
    # kill -9 before step 5's checkpoint existed: the newest one is step 4's (written with step 4's eval)
    import shutil
    shutil.rmtree(tmp_path / "run" / "checkpoints" / "5")
    resumed = _run_with_length(tmp_path / "run", cfg, resume=True)
    assert [e["step"] for e in resumed.evals] == [2, 4, 6, 8]
    assert resumed.evals == reference.evals


def test_resuming_with_fewer_steps_than_trained_is_an_error_that_changes_nothing(tmp_path):
    cfg = LoopConfig(steps=6, batch_size=8, log_every=2, checkpoint_every=2, option_names=CLI, **QUIET)
    shorter = dataclasses.replace(cfg, steps=4, option_names=OptionNames(resume="--resume", steps="--steps"))
    _run_with_length(tmp_path / "run", cfg)
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    with pytest.raises(ValueError, match=r"^--steps 4: .*run has already trained 6 steps.* pass --steps 6 or more"):
        _run_with_length(tmp_path / "run", shorter, resume=True)
    after = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    assert after == before and json.loads((tmp_path / "run" / "config.json").read_text())["steps"] == 6
    # a resume from a kept checkpoint at or before the new length is the same run, shortened on purpose
    cut = _run_with_length(tmp_path / "run", dataclasses.replace(shorter, resume_from=4), resume=True)
    assert cut.step == 4 and json.loads((tmp_path / "run" / "config.json").read_text())["steps"] == 4
    # the engine refuses too when the caller does not give open_run the loop settings
    with open_run(tmp_path / "run", {"toy": 1, "steps": 2}, resume=True, may_change=("steps",)) as run:
        with pytest.raises(ValueError, match=r"^steps 2: .* already trained 4 steps"):
            train(task(), ArrayData(), LoopConfig(steps=2, batch_size=8, **QUIET), run, log=lambda s: None)


def test_may_change_covers_every_field_below_a_dotted_path():
    from runloop import config_differences

    recorded = {"train": {"names": {"resume": "--resume"}, "lr": 1.0}}
    current = {"train": {"names": {"resume": "--resume", "steps": "--steps"}, "lr": 2.0}}
    assert config_differences(recorded, current, ("train.names",)) == ["train.lr: 1.0 -> 2.0"]
    assert config_differences(recorded, current, ("train.name",)) == [
        'train.lr: 1.0 -> 2.0', 'train.names.steps: <absent> -> "--steps"']


def test_after_a_nan_stop_a_resume_may_change_only_the_allowed_fields_and_says_so(tmp_path):
    cfg = LoopConfig(steps=8, batch_size=8, log_every=1, checkpoint_every=2, keep_checkpoints=5, **QUIET)

    def run(config, data, **kwargs):
        with open_run(tmp_path / "run", config, resume=kwargs.pop("resume", False), after_nonfinite=("optim.lr",),
                      loop=kwargs.get("loop", cfg)) as opened:
            return train(task(), data, kwargs.pop("loop", cfg), opened, log=lambda s: None)

    before = {"optim": {"lr": 1.0, "wd": 0.1}}
    # before any NaN stop the learning rate is part of the run
    run(before, ArrayData(), loop=dataclasses.replace(cfg, steps=2))
    with pytest.raises(ValueError, match=r"optim.lr: 1.0 -> 0.5"):
        run({"optim": {"lr": 0.5, "wd": 0.1}}, ArrayData(), resume=True)
    with pytest.raises(NonFiniteError):
        run(before, ArrayData(nan_from=5), resume=True)
    stop = json.loads((tmp_path / "run" / "nonfinite.json").read_text())
    assert stop["step"] >= 4 and "non-finite" in stop["error"]
    with pytest.raises(ValueError, match=r"optim.wd: 0.1 -> 0.2"):  # only the allowed field
        run({"optim": {"lr": 0.5, "wd": 0.2}}, ArrayData(), resume=True)
    done = run({"optim": {"lr": 0.5, "wd": 0.1}}, ArrayData(), resume=True,
               loop=dataclasses.replace(cfg, resume_from=4))
    assert done.completed and done.step == 8
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["optim"] == {"lr": 0.5, "wd": 0.1}
    assert config["after_nonfinite"] == [{"field": "optim.lr", "old": 1.0, "new": 0.5,
                                          "stopped_at_step": stop["step"]}]
    assert not (tmp_path / "run" / "nonfinite.json").exists()
    with pytest.raises(ValueError, match=r"optim.lr: 0.5 -> 0.25"):  # no NaN stop now: the rate is fixed again
        run({"optim": {"lr": 0.25, "wd": 0.1}}, ArrayData(), resume=True)

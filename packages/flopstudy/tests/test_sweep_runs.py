"""Running sweeps with fast fake stages: skip, resume, failure recording, FLOP budgets, confirm seeds, claims, two
executors on one output, worker processes, submitit's local executor, and the table rebuilt from run folders."""

import dataclasses
import json
import multiprocessing
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import flopcli  # noqa: E402
import flopstudy  # noqa: E402
from _sweep_fakes import FakeStages, race, read_log  # noqa: E402
from flopstudy import load_results  # noqa: E402
from flopstudy.stages import Stages  # noqa: E402
from flopstudy.sweep import (  # noqa: E402
    LocalExecutor,
    SubmititExecutor,
    build_rows,
    claim_holder,
    load_sweep,
    rebuild_results,
    release,
    run_sweep,
    try_claim,
)
from flopstudy.sweep.executors import WorkerLost  # noqa: E402

TESTS = str(Path(__file__).parent)


def _config(**fields):
    return {"name": "t", "methods": ("mae", "simclr"), "backbones": ("vit-test",), "datasets": ("fmnist_objects",),
            "budgets": (100, 200), "batch": 8,
            "tasks": {"segmentation": {"dataset": "fmnist_scenes", "steps": 3, "lrs": (1e-3,), "wds": (0.05,),
                                     "seeds": 1}}} | fields


def _run(tmp_path, config, **stage_options):
    stages = FakeStages(str(tmp_path / "stages.log"), **stage_options)
    lines = []
    status = run_sweep(load_sweep(config), tmp_path / "out", stages=stages, log=lines.append, poll_seconds=0.1)
    return status, lines


def _rows(tmp_path):
    return [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]


def test_failures_are_recorded_others_go_on_and_a_rerun_skips_finished_stages(tmp_path):
    config = _config(methods=("mae", "simclr", "byol"))
    status, lines = _run(tmp_path, config, fail_methods=("byol",), fail_task_methods=("simclr",))
    assert (status.done, status.failed, status.left) == (3, 4, 0)  # scratch + 2 mae | 2 byol, 2 simclr
    rows = _rows(tmp_path)
    byol = [r for r in rows if r["method"] == "byol"]
    assert {r["status"] for r in byol} == {"failed"} and byol[0]["error"].startswith("RuntimeError: boom in byol")
    assert {r["status"] for r in rows if r["method"] == "simclr"} == {"failed"}
    assert all(r["error"].startswith("ValueError: fine-tuning boom") for r in rows if r["method"] == "simclr")
    assert {r["status"] for r in rows if r["method"] in ("mae", "scratch")} == {"done"}
    failure = json.loads(next((tmp_path / "out" / "runs").glob("byol-*-100s-*/failed.json")).read_text())
    assert failure["stage"] == "pretrain" and "Traceback" in failure["traceback"]
    assert any("pretrain failed: RuntimeError: boom" in line for line in lines)
    before = read_log(tmp_path / "stages.log")
    assert max(Counter(before).values()) == 1
    # step budgets: no separate FLOP measurement; flops.json comes from the finished pre-training
    assert "flops" not in {stage for _, stage in before}
    assert all((d / "flops.json").exists() == (d / "pretrain" / "summary.json").exists()
               for d in (tmp_path / "out" / "runs").iterdir() if not d.name.startswith("scratch"))

    status, _ = _run(tmp_path, config)  # nothing fails now, but failed runs stay failed unless retried
    assert read_log(tmp_path / "stages.log") == before and (status.done, status.failed) == (3, 4)
    status = run_sweep(load_sweep(config), tmp_path / "out", stages=FakeStages(str(tmp_path / "stages.log")),
                       retry_failed=True, log=lambda m: None)
    assert (status.done, status.failed) == (7, 0)
    again = read_log(tmp_path / "stages.log")[len(before):]
    # byol: pretrain again and fine-tune; simclr: only the fine-tuning (step budgets: no separate flops stage)
    assert sorted(stage for _, stage in again) == ["finetune-seed0"] * 4 + ["pretrain"] * 2
    assert (next((tmp_path / "out" / "runs").glob("byol-*-100s-*")) / "failed.previous.json").exists()


def test_an_interrupted_pretraining_resumes_and_flop_budgets_become_steps(tmp_path):
    config = _config(methods=("mae",), budgets=(4e11,), budget_unit="flops", scratch=False)
    status, lines = _run(tmp_path, config, preempt_methods=("mae",))
    assert status.left == 1 and any("run the sweep again to resume" in line for line in lines)
    status, _ = _run(tmp_path, config, preempt_methods=("mae",))
    assert status.done == 1
    assert [stage for _, stage in read_log(tmp_path / "stages.log")] == ["flops", "pretrain-start",
                                                                        "pretrain-resume", "finetune-seed0"]
    (row,) = _rows(tmp_path)
    assert row["pretrain_steps"] == 200 and row["pretrain_flops"] == 4e11  # 4e11 FLOPs / 2e9 FLOPs per step
    assert row["budget"] == 4e11 and row["budget_unit"] == "flops"


def test_results_table_is_rebuilt_from_the_run_directories(tmp_path):
    _run(tmp_path, _config(confirm_seeds=2, confirm_by=("method",)))
    out = tmp_path / "out"
    csv, jsonl = (out / "results.csv").read_bytes(), (out / "results.jsonl").read_bytes()
    (out / "results.csv").unlink()
    (out / "results.jsonl").unlink()
    rebuild_results(out)
    assert (out / "results.csv").read_bytes() == csv and (out / "results.jsonl").read_bytes() == jsonl
    loaded = load_results([out])
    assert not loaded.problems and len(loaded.rows) == len(_rows(tmp_path))
    rows = {(r.method, r.pretrain_steps, r.seed): r for r in loaded.rows}
    # confirm seeds 1 and 2 (after the explore seed 0): the best point of each method (the longer budget scores
    # higher) and scratch; every scratch seed is a confirm seed
    assert sorted(k for k in rows if k[2] > 0) == [("mae", 200, 1), ("mae", 200, 2), ("scratch", 0, 1),
                                                   ("scratch", 0, 2), ("simclr", 200, 1), ("simclr", 200, 2)]
    assert {k: r.seed_role for k, r in rows.items() if k[0] == "mae"} == {
        ("mae", 100, 0): "explore", ("mae", 200, 0): "explore", ("mae", 200, 1): "confirm",
        ("mae", 200, 2): "confirm"}
    assert {r.seed_role for k, r in rows.items() if k[0] == "scratch"} == {"confirm"}
    # the verdicts test each method's chosen point on its confirm seeds only (fake scores: 22% + 1% per seed,
    # scratch 10% + 1% per seed)
    verdicts = flopstudy.compare_to_scratch(loaded.rows)
    assert [(v.method, v.pretrain_flops, v.n_confirm, v.n_baseline) for v in verdicts] == [
        ("mae", 4e11, 2, 3), ("simclr", 2e11, 2, 3)]
    assert verdicts[0].effect == pytest.approx((23.0 + 24.0) / 2 - (10.0 + 11.0 + 12.0) / 3)
    mae = rows[("mae", 200, 0)]
    assert (mae.pretrain_flops, mae.flops_per_step, mae.num_devices, mae.flops_per_step_per_device) == \
        (4e11, 2e9, 2, 1e9)
    assert (mae.score, mae.status, mae.score_metric, mae.finetune_flops) == (pytest.approx(22.0), "done", "mIoU", 5e8)
    assert (mae.upstream_loss, mae.upstream_accuracy, mae.pretrain_seconds, mae.params) == (0.005, 50.0, 210.0, 1234)
    scratch = rows[("scratch", 0, 0)]
    assert (scratch.pretrain_flops, scratch.pretrain_dataset, scratch.score) == (0.0, "", pytest.approx(10.0))
    # the table follows the files: a changed result shows after a rebuild
    result = next(out.glob("runs/mae-*-100s-*/tasks/*/result.json"))
    result.write_text(json.dumps(json.loads(result.read_text()) | {"per_seed_miou": [0.5]}))
    rebuild_results(out)
    assert next(r for r in build_rows(out) if r.method == "mae" and r.pretrain_steps == 100).score == 50.0


def test_pretrain_seeds_pre_train_each_chosen_point_again_and_its_verdict_compares_encoders(tmp_path):
    """config.pretrain_seeds=2: each method's chosen point is pre-trained once more (pre-training seed 1: its own
    run and folder), that encoder is fine-tuned with the confirm seeds only, and the verdict's unit is the encoder
    (fake scores: 20% + steps/100 + 0.2% per pre-training seed + 1% per fine-tuning seed; scratch 10% + 1% per
    seed)."""
    from flopstudy import ReportOptions, write_report

    config = _config(confirm_seeds=2, confirm_by=("method",), pretrain_seeds=2)
    status, lines = _run(tmp_path, config)
    assert (status.done, status.failed, status.left) == (7, 0, 0)  # scratch, 2 methods x 2 budgets, 2 repeats
    assert any("pre-training seeds: 2 for each chosen pre-trained point (2 more" in line for line in lines)
    out = tmp_path / "out"
    specs = [json.loads((d / "spec.json").read_text()) for d in (out / "runs").iterdir()]
    assert sorted((s["method"], s["budget"], s["seed"]) for s in specs) == [
        ("mae", 100, 0), ("mae", 200, 0), ("mae", 200, 1), ("scratch", 0, 0), ("simclr", 100, 0),
        ("simclr", 200, 0), ("simclr", 200, 1)]
    loaded = load_results([out])
    assert not loaded.problems
    rows = {(r.method, r.pretrain_steps, r.pretrain_seed, r.seed): r for r in loaded.rows}
    # the first pass's run stays pre-training seed 0; the repeat has the confirm seeds only
    assert sorted(k for k in rows if k[0] == "mae") == [("mae", 100, 0, 0), ("mae", 200, 0, 0), ("mae", 200, 0, 1),
                                                        ("mae", 200, 0, 2), ("mae", 200, 1, 1), ("mae", 200, 1, 2)]
    assert {r.seed_role for k, r in rows.items() if k[2] == 1} == {"confirm"}
    assert rows[("mae", 200, 1, 1)].run_dir != rows[("mae", 200, 0, 1)].run_dir
    assert rows[("mae", 200, 1, 1)].score == pytest.approx(23.2)
    assert {k[2] for k in rows if k[0] == "scratch"} == {0}
    assert max(Counter(read_log(tmp_path / "stages.log")).values()) == 1
    verdicts = flopstudy.compare_to_scratch(loaded.rows)
    assert [(v.method, v.n_confirm, v.n_encoders, v.variance, v.n_baseline) for v in verdicts] == [
        ("mae", 2, 2, "pretrain_and_finetune", 3), ("simclr", 2, 2, "pretrain_and_finetune", 3)]
    encoders = [(23.0 + 24.0) / 2, (23.2 + 24.2) / 2]  # mae 200 steps: each encoder's confirm-seed mean
    assert verdicts[0].mean == pytest.approx(sum(encoders) / 2)
    assert verdicts[0].effect == pytest.approx(sum(encoders) / 2 - (10.0 + 11.0 + 12.0) / 3)
    report = write_report(loaded, tmp_path / "report", ReportOptions(n_boot=20))
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    assert saved["verdicts"] == report["verdicts"]
    assert [(v["method"], v["variance"], v["n_confirm"]) for v in saved["verdicts"]] == [
        ("mae", "pretrain_and_finetune", 2), ("simclr", "pretrain_and_finetune", 2)]
    assert "on 2 pre-training runs (the mean of each one's confirm seeds)" in saved["summary"][0]
    # the same sweep again: the same points and repeats, nothing runs twice, the same table
    table = (out / "results.csv").read_bytes()
    before = read_log(tmp_path / "stages.log")
    _run(tmp_path, config)
    assert read_log(tmp_path / "stages.log") == before and (out / "results.csv").read_bytes() == table


def test_pretrain_seeds_repeat_a_chain_from_its_first_stage(tmp_path):
    """A chosen chain (MAE pre-pretraining, then supervised) is pre-trained again from a repeated first stage,
    which is a run without tasks of its own."""
    config = _config(methods=("mae", "supervised"), budgets=(100,), scratch=False, confirm_seeds=1,
                     confirm_by=("method", "variant"), pretrain_seeds=2,
                     prepretrain={"method": "mae", "budgets": (50,), "then": ("supervised",)})
    status, _ = _run(tmp_path, config)
    assert (status.done, status.failed, status.left) == (8, 0, 0)  # 4 runs, 3 chosen points repeated, 1 first stage
    specs = {d.name: json.loads((d / "spec.json").read_text()) for d in (tmp_path / "out" / "runs").iterdir()}
    again = {name: s for name, s in specs.items() if s["seed"] == 1}
    assert sorted((s["method"], s["budget"], s.get("init", {}).get("seed", -1)) for s in again.values()) == [
        ("mae", 50, -1), ("mae", 100, -1), ("supervised", 100, -1), ("supervised", 100, 1)]
    first = next(name for name, s in again.items() if s["budget"] == 50)
    chain = next(name for name, s in again.items() if "init" in s)
    assert (chain, f"init-from:{first}") in read_log(tmp_path / "stages.log")
    rows = _rows(tmp_path)
    assert not [r for r in rows if r["run_id"] == first]  # the repeated first stage has no task rows
    assert sorted((r["seed"], r["seed_role"]) for r in rows if r["run_id"] == chain) == [(1, "confirm")]
    assert {r["pretrain_seed"] for r in rows} == {0, 1}


def test_study_co2_columns_from_a_configured_fit(tmp_path):
    _run(tmp_path, _config(methods=("mae",), budgets=(100,), co2={"fit_a": 1e6, "fit_b": -0.5, "chips": 4}))
    mae = next(r for r in _rows(tmp_path) if r["method"] == "mae")
    hours = 100 / (1e6 * 2e9 ** -0.5) / 3600  # steps / (a * FLOPs_per_step ** b), in hours
    assert mae["study_hours"] == pytest.approx(hours)
    assert mae["study_kwh"] == pytest.approx(4 * 283 * hours / 1000)  # 4 TPUv3 chips at 283 W
    assert mae["study_kg_co2e"] == pytest.approx(mae["study_kwh"] * 0.267)  # europe-west1, 267 g/kWh


def test_claims_are_exclusive_and_a_dead_owners_claim_is_taken_over(tmp_path):
    path = tmp_path / "claim.json"
    mine = try_claim(path)
    assert mine is not None and try_claim(path) is None  # held by a live process (this one)
    assert claim_holder(path)["pid"] == os.getpid()
    release(mine)
    assert claim_holder(path) is None
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout), "started_at": "then"}))
    messages = []
    taken = try_claim(path, log=messages.append)
    assert taken is not None and messages == [f"taking over {path}: its owner (host {socket.gethostname()}, pid "
                                              f"{int(dead.stdout)}, since then) is gone"]
    release(taken)
    path.write_text(json.dumps({"host": "another-host", "pid": 1, "started_at": "then"}))
    assert try_claim(path) is None  # another host's claim cannot be checked from here: respected


def test_two_executors_on_one_output_never_run_a_stage_twice(tmp_path):
    config = _config(methods=("mae", "simclr", "byol"), confirm_seeds=1)
    out, log = str(tmp_path / "out"), str(tmp_path / "stages.log")
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)  # both start together, after their imports
    racers = [context.Process(target=race, args=(config, out, log, 0, 0.1, barrier)) for _ in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=240)
    assert [r.exitcode for r in racers] == [0, 0]
    entries = read_log(log)
    assert max(Counter(entries).values()) == 1, Counter(entries).most_common(3)
    pids = Counter(line.split()[2] for line in Path(log).read_text().splitlines())
    assert len(pids) == 2, pids  # both executors did work
    rows = _rows(tmp_path)
    assert {r["status"] for r in rows} == {"done"} and len({r["run_id"] for r in rows}) == 7
    assert not list(Path(out).glob("runs/*/claim.json"))


def test_local_worker_processes(tmp_path):
    stages = FakeStages(str(tmp_path / "stages.log"), fail_methods=("simclr",))
    status = run_sweep(load_sweep(_config(budgets=(100,))), tmp_path / "out", executor=LocalExecutor(workers=2),
                       stages=stages, log=lambda m: None)
    assert (status.done, status.failed) == (2, 1)
    pids = {line.split()[2] for line in (tmp_path / "stages.log").read_text().splitlines()}
    assert pids and str(os.getpid()) not in pids  # the stages ran in the workers


def test_submitit_local_executor_runs_the_same_jobs(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))
    executor = SubmititExecutor(tmp_path / "submitit", cluster="local", parameters={"timeout_min": 5},
                                poll_seconds=0.2)
    stages = FakeStages(str(tmp_path / "stages.log"), fail_methods=("simclr",))
    lines = []
    status = run_sweep(load_sweep(_config(budgets=(100,))), tmp_path / "out", executor=executor, stages=stages,
                       log=lines.append, poll_seconds=0.1)
    assert (status.done, status.failed) == (2, 1)
    assert any(line.startswith("submitted 3 job(s)") for line in lines)
    pids = {line.split()[2] for line in (tmp_path / "stages.log").read_text().splitlines()}
    assert str(os.getpid()) not in pids  # the stages ran in submitit's processes
    assert {r["status"] for r in _rows(tmp_path) if r["method"] == "simclr"} == {"failed"}


def test_a_broken_task_result_is_a_failed_row_naming_the_file(tmp_path):
    _run(tmp_path, _config(methods=("mae",), budgets=(100,)))
    result = next((tmp_path / "out").glob("runs/mae-*/tasks/*/result.json"))
    result.write_text("{not json")
    rebuild_results(tmp_path / "out")
    mae = next(r for r in _rows(tmp_path) if r["method"] == "mae")
    assert mae["status"] == "failed" and mae["error"].startswith(f"ValueError: {result}: not a segmentation result")
    status, _ = _run(tmp_path, _config(methods=("mae",), budgets=(100,)))  # the sweep reports it and goes on
    assert (status.done, status.failed) == (1, 1)


@pytest.mark.parametrize("bad", ["NaN", "5.0", "null", "{not json"])
def test_a_nan_or_corrupt_task_result_fails_only_its_row_naming_the_file_and_a_retry_reruns_it(tmp_path, bad):
    config = _config(methods=("mae",), budgets=(100, 200))
    _run(tmp_path, config)
    result = next((tmp_path / "out").glob("runs/mae-*-100s-*/tasks/*/result.json"))
    good = json.loads(result.read_text())
    text = result.read_text().replace(json.dumps(good["per_seed_miou"]), f"[{bad}]") if bad != "{not json" else bad
    result.write_text(text)
    before = read_log(tmp_path / "stages.log")
    status, lines = _run(tmp_path, config)  # the sweep goes on: the other runs stay done
    assert (status.done, status.failed) == (2, 1)
    rows = {(r["method"], r["pretrain_steps"]): r for r in _rows(tmp_path)}
    assert rows[("mae", 100)]["status"] == "failed"
    assert rows[("mae", 100)]["error"].startswith(f"ValueError: {result}: not a segmentation result")
    assert rows[("mae", 200)]["status"] == rows[("scratch", 0)]["status"] == "done"
    assert read_log(tmp_path / "stages.log") == before  # a plain rerun does not redo it
    status = run_sweep(load_sweep(config), tmp_path / "out", stages=FakeStages(str(tmp_path / "stages.log")),
                       retry_failed=True, log=lines.append, poll_seconds=0.1)
    assert (status.done, status.failed) == (3, 0)
    assert [stage for _, stage in read_log(tmp_path / "stages.log")[len(before):]] == ["finetune-seed0"]
    assert result.with_name("result.broken.json").read_text() == text  # kept for inspection
    assert json.loads(result.read_text()) == good
    assert any(f"set aside as {result.with_name('result.broken.json')}" in line for line in lines)


def test_a_bad_upstream_value_fails_its_rows_naming_the_run_not_the_table(tmp_path):
    config = _config(methods=("mae",), budgets=(100, 200))
    _run(tmp_path, config)
    summary = next((tmp_path / "out").glob("runs/mae-*-100s-*/pretrain/summary.json"))
    summary.write_text(json.dumps(json.loads(summary.read_text()) | {"knn": [{"step": 100, "knn_top1": 5.0}]}))
    rows = {(r.method, r.extras["budget"]): r for r in build_rows(tmp_path / "out")}
    bad = rows[("mae", 100.0)]
    assert bad.status == "failed" and bad.score is None
    assert bad.error.startswith(f"{summary.parents[1]}: bad value: upstream_accuracy=500.0 is out of range")
    assert rows[("mae", 200.0)].status == "done"


def test_mae_pre_pretraining_chains_count_both_stages_and_wait_for_the_first(tmp_path):
    """config.prepretrain: each supervised run again after each MAE first stage; a first stage that is a plain
    run of the sweep is shared; a chain's pretrain_flops is both stages' (fake FLOPs per step: MAE 2e9, else 1e9)."""
    config = _config(methods=("mae", "supervised"), budgets=(100,), scratch=False,
                     prepretrain={"method": "mae", "budgets": (50, 100), "then": ("supervised",)})
    status, _ = _run(tmp_path, config)
    assert (status.done, status.failed, status.left) == (5, 0, 0)  # mae 100 (shared), mae 50, supervised x 3
    rows = {(r["method"], r["variant"], r["pretrain_steps"]): r for r in _rows(tmp_path)}
    assert sorted(rows) == [("mae", "", 50), ("mae", "", 100), ("supervised", "", 100),
                            ("supervised", "after mae 100 steps", 100), ("supervised", "after mae 50 steps", 100)]
    chained = rows[("supervised", "after mae 50 steps", 100)]
    assert chained["prepretrain_method"] == "mae" and chained["prepretrain_steps"] == 50
    assert chained["prepretrain_flops"] == 50 * 2e9 and chained["pretrain_flops"] == 100 * 1e9 + 50 * 2e9
    assert rows[("supervised", "", 100)]["prepretrain_method"] is None
    log = read_log(tmp_path / "stages.log")
    inits = sorted(stage for _, stage in log if stage.startswith("init-from:"))
    first_ids = sorted(r["run_id"] for k, r in rows.items() if k[0] == "mae")
    assert inits == sorted(f"init-from:{run_id}" for run_id in first_ids)
    assert [stage for run_id, stage in log if run_id == first_ids[0]].count("pretrain") == 1  # shared, run once


def test_a_chain_fails_when_its_first_stage_failed(tmp_path):
    config = _config(methods=("supervised",), budgets=(100,), scratch=False,
                     prepretrain={"method": "mae", "budgets": (50,), "then": ("supervised",)})
    status, _ = _run(tmp_path, config, fail_methods=("mae",))
    rows = _rows(tmp_path)
    chained = next(r for r in rows if r["variant"] == "after mae 50 steps")
    assert chained["status"] == "failed" and "its first stage mae-" in chained["error"]
    assert next(r for r in rows if r["variant"] == "")["status"] == "done"


_USER_METHOD = """from sslmethods.methods.simclr import SimCLR


class Picky(SimCLR):
    def __check_init__(self):
        raise RuntimeError("picky refuses")
"""


@dataclasses.dataclass(frozen=True)
class _BuildingStages(FakeStages):
    """Fake stages whose check and pre-training build each run's method for real (as `Stages` does)."""

    def check_run(self, run):
        Stages.check_run(self, run)

    def pretrain(self, run, **kwargs):
        Stages.check_run(self, run)
        return super().pretrain(run, **kwargs)


def test_a_users_method_failing_its_check_is_a_failed_run_and_the_sweep_goes_on(tmp_path, monkeypatch):
    # issue 25: the driver crashed with the method's traceback before anything was recorded
    (tmp_path / "u25_picky.py").write_text(_USER_METHOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = _config(methods=("mae", "u25_picky:Picky"), budgets=(100,))
    lines = []
    status = run_sweep(load_sweep(config), tmp_path / "out", stages=_BuildingStages(str(tmp_path / "stages.log")),
                       log=lines.append)
    assert (status.done, status.failed) == (2, 1)  # mae and scratch ran; the picky run is recorded as failed
    failed = next((tmp_path / "out" / "runs").glob("*/failed.json"))
    record = json.loads(failed.read_text())
    assert record["stage"] == "check" and "RuntimeError: picky refuses" in record["error"], record
    assert "u25_picky:Picky" in record["error"] and "picky refuses" in record["traceback"]
    assert {r["status"] for r in _rows(tmp_path) if r["method"] == "u25_picky:Picky"} == {"failed"}
    assert any("check failed" in line for line in lines)
    # --retry-failed: tried again, fails the same way, recorded again (no crash)
    status = run_sweep(load_sweep(config), tmp_path / "out", stages=_BuildingStages(str(tmp_path / "stages.log")),
                       retry_failed=True, log=lambda m: None)
    assert (status.done, status.failed) == (2, 1)
    assert (failed.parent / "failed.previous.json").is_file()
    assert "picky refuses" in json.loads(failed.read_text())["error"]


def test_a_killed_worker_ends_the_sweep_as_interrupted_and_a_rerun_finishes(tmp_path, capsys):
    # issue 25: the driver printed a traceback and exited 1; a worker's death is an interruption (status 3)
    config = load_sweep(_config(budgets=(100,)))
    with pytest.raises(WorkerLost) as lost:
        run_sweep(config, tmp_path / "out", executor=LocalExecutor(workers=1), log=lambda m: None,
                  stages=FakeStages(str(tmp_path / "stages.log"), kill_methods=("simclr",)))
    code = flopcli.run(flopcli.ArgumentParser(), lambda args: (_ for _ in ()).throw(lost.value), [])
    err = capsys.readouterr().err
    assert code == 3 and err.startswith("interrupted: a worker process died") and "Traceback" not in err, err
    status = run_sweep(config, tmp_path / "out", stages=FakeStages(str(tmp_path / "stages.log")),
                       log=lambda m: None)
    assert (status.done, status.failed, status.left) == (3, 0, 0)

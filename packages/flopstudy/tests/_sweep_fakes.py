"""Fast fake stages for the sweep's orchestration tests (claims, skip/resume/failure, executors, the table).

`FakeStages` writes the same result files the real stages do (``flops.json`` via the job, ``summary.json``,
segtransfer's ``result.json`` keys) in milliseconds, and appends one line per stage it actually executes to
``log_path`` (``O_APPEND``, so lines from racing processes never interleave): ``<run_id> <stage> <pid>``. A test
then asserts that no (run, stage) line appears twice. Importable by module name (tests put this folder on
``sys.path``/``PYTHONPATH``) so spawned processes and submitit jobs can unpickle it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from pathlib import Path

from flopstudy.stages import Stages


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


@dataclasses.dataclass(frozen=True)
class FakeStages(Stages):
    """``fail_methods``: pre-training of these methods raises; ``fail_task_methods``: their fine-tuning raises;
    ``preempt_methods``: their pre-training stops once (checkpoint marker), then resumes; ``kill_methods``: their
pre-training kills its own process with SIGKILL; ``sleep``: seconds per
    stage (lets racing executors interleave); ``flops_per_step``: per method name, default 1e9."""

    log_path: str
    sleep: float = 0.0
    fail_methods: tuple[str, ...] = ()
    fail_task_methods: tuple[str, ...] = ()
    preempt_methods: tuple[str, ...] = ()
    kill_methods: tuple[str, ...] = ()

    def _log(self, run_id: str, stage: str) -> None:
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{run_id} {stage} {os.getpid()}\n".encode())
        finally:
            os.close(fd)
        time.sleep(self.sleep)

    def check_run(self, run):
        from sslmethods.pretrain.recipes import method_class

        if not run.is_scratch:
            method_class(run.method)

    def check_dataset(self, name, *, data_dir):
        if name.startswith("missing"):
            raise ValueError(f"dataset {name!r} is not built")

    def build_dataset(self, name, options, *, data_dir):
        pass

    def ensure_dataset(self, name, *, data_dir):
        pass

    @staticmethod
    def _flops(run):
        return {"flops_per_step": 1e9 * (2.0 if run.method == "mae" else 1.0), "params": 1234,
                "flops_per_step_per_device": 1e9, "measured_devices": 1}

    def measure_flops(self, run, *, data_dir):
        self._log(run.run_id, "flops")
        return self._flops(run)

    def recorded_flops(self, run, *, out_dir, data_dir):
        assert (Path(out_dir) / "summary.json").exists()  # only after a finished pre-training
        return self._flops(run)

    def pretrain(self, run, *, steps, out_dir, data_dir, settings, init_from=None):
        if init_from is not None:  # a chain's second stage: its first stage must be finished
            assert (Path(init_from) / "summary.json").is_file(), init_from
            self._log(run.run_id, f"init-from:{Path(init_from).parent.name}")
        marker = Path(out_dir) / "checkpoints" / "half"
        if run.method in self.preempt_methods and not marker.exists():
            self._log(run.run_id, "pretrain-start")
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(str(steps // 2))
            return {"status": "preempted", "steps": steps // 2}
        self._log(run.run_id, "pretrain-resume" if marker.exists() else "pretrain")
        if run.method in self.kill_methods:
            os.kill(os.getpid(), signal.SIGKILL)  # a worker killed with -9 (or by the OOM killer) mid-run
        if run.method in self.fail_methods:
            raise RuntimeError(f"boom in {run.run_id}")
        summary = {"status": "completed", "method": run.method, "model": run.backbone, "dataset": run.dataset,
                   "steps": steps, "batch_size": run.batch, "devices": 2, "device_kind": "cpu",
                   "wall_seconds": 10.0 + steps, "images_per_second": 100.0, "energy_kwh": None, "kg_co2e": None,
                   "final_metrics": {"loss": 1.0 / steps}, "knn": [{"step": steps, "knn_top1": 0.5}]}
        _write_json(Path(out_dir) / "summary.json", summary)
        return summary

    def finetune(self, task, settings, *, encoder, model, out_dir, seeds, data_dir):
        run_id = Path(out_dir).parents[1].name
        pretrain_seed = 0
        if encoder != "scratch":
            spec = json.loads((Path(encoder).parent / "spec.json").read_text())
            method, pretrain_seed = spec["method"], spec["seed"]
            if method in self.fail_task_methods:
                self._log(run_id, "finetune-fail")
                raise ValueError(f"fine-tuning boom in {run_id}")
            steps = json.loads((Path(encoder) / "summary.json").read_text())["steps"]
        path = Path(out_dir) / "result.json"
        old = json.loads(path.read_text()) if path.exists() else {"seeds": [], "per_seed_miou": []}
        scores = dict(zip(old["seeds"], old["per_seed_miou"], strict=True))
        for seed in seeds:
            if seed not in scores:
                self._log(run_id, f"finetune-seed{seed}")
                # scratch 10%; pre-trained 20% + steps/100 (more budget, better), seeds 1% apart, pre-training
                # seeds 0.2% apart
                base = 0.10 if encoder == "scratch" else 0.20 + steps / 10_000 + 0.002 * pretrain_seed
                scores[seed] = base + 0.01 * seed
        ordered = sorted(scores)
        _write_json(path, {"seeds": ordered, "per_seed_miou": [scores[s] for s in ordered], "lr": settings.lrs[0],
                           "wd": settings.wds[0], "steps": settings.steps, "finetune_flops": 5e8,
                           "finetune_flops_all_runs": 5e8 * len(ordered)})


def read_log(path: str | Path) -> list[tuple[str, str]]:
    """(run_id, stage) of every line of the stage log."""
    if not Path(path).exists():
        return []
    return [tuple(line.split()[:2]) for line in Path(path).read_text().splitlines()]


def race(config: dict, out: str, log_path: str, workers: int, sleep: float, barrier: object) -> None:
    """One racing executor (a spawned process's target): waits for the others at ``barrier``, then runs the
    sweep with fake stages taking ``sleep`` seconds each."""
    from flopstudy.sweep import LocalExecutor, load_sweep, run_sweep

    sweep = load_sweep(config)
    barrier.wait()
    run_sweep(sweep, out, executor=LocalExecutor(workers=workers), stages=FakeStages(log_path, sleep=sleep),
              poll_seconds=0.2, log=lambda m: None)

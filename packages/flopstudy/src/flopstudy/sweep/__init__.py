"""Sweeps: the study's grid of methods x budgets x backbones x datasets (x variants, tasks, seeds) as run
directories, run on this machine or a SLURM cluster, and one results table rebuilt from them.

    sweep = load_sweep("configs/demo.py", ["--config.budgets=(100,200)"])
    status = run_sweep(sweep, "runs/demo", executor=LocalExecutor(workers=2))
    rebuild_results("runs/demo")            # results.csv + results.jsonl at the output root

Modules: `config` (SweepSpec, load_sweep), `config_file` (get_config files, --config.x overrides), `expansion`
(grid expansion into a `Plan`, confirm seeds, repeated pre-training), `rundir` (layout, atomic files, failures),
`claims` (O_EXCL claims), `job` (one run's stages), `executors` (local, processes, submitit), `progress`,
`rebuild` (the results table rebuilt from the run directories), `runner` (run_sweep), `step_costs` (every distinct
step of a plan measured abstractly), `presets` (the study's paper-scale settings that configs start from). Run and
task identities, the task protocol and the settings' parts are in `flopstudy.specs`; the task kinds in
`flopstudy.stages.registry`; both are re-exported here.
"""

from ..specs.runs import SCRATCH, RunSpec, TaskSpec, spec_hash
from ..specs.task_protocol import AbstractTask, TaskResult
from ..stages.registry import TASKS, get_task, task_spec
from .claims import Claim, claim_holder, release, try_claim
from .config import (
    BackboneSettings,
    Co2Settings,
    MethodSettings,
    PrepretrainSettings,
    PretrainSettings,
    SweepSpec,
    load_sweep,
    sweep_from_mapping,
)
from .config_file import apply_overrides, load_config_file
from .executors import AbstractExecutor, LocalExecutor, SubmititExecutor, WorkerLost
from .expansion import Plan, PlannedTask, confirm_points, confirm_seed_numbers, expand, repeat_run, variant_label
from .job import Job, JobOutcome, execute, pretrain_steps
from .progress import SweepProgress, SweepStatus, sweep_status
from .rebuild import build_rows, read_sweep_file, rebuild_results
from .rundir import RunDir
from .runner import cache_dir_for, prepare_sweep, run_sweep
from .step_costs import sweep_step_costs

__all__ = [
    "SCRATCH",
    "TASKS",
    "AbstractExecutor",
    "AbstractTask",
    "BackboneSettings",
    "Claim",
    "Co2Settings",
    "Job",
    "JobOutcome",
    "LocalExecutor",
    "MethodSettings",
    "Plan",
    "PlannedTask",
    "PrepretrainSettings",
    "PretrainSettings",
    "RunDir",
    "RunSpec",
    "SubmititExecutor",
    "SweepProgress",
    "WorkerLost",
    "SweepSpec",
    "SweepStatus",
    "TaskResult",
    "TaskSpec",
    "apply_overrides",
    "build_rows",
    "cache_dir_for",
    "claim_holder",
    "confirm_points",
    "confirm_seed_numbers",
    "execute",
    "expand",
    "get_task",
    "load_config_file",
    "load_sweep",
    "prepare_sweep",
    "pretrain_steps",
    "read_sweep_file",
    "rebuild_results",
    "release",
    "repeat_run",
    "run_sweep",
    "spec_hash",
    "sweep_from_mapping",
    "sweep_status",
    "sweep_step_costs",
    "task_spec",
    "try_claim",
    "variant_label",
]

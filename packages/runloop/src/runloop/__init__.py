"""runloop: the one training engine every flopwise loop runs through (pre-training, segmentation, detection).

A caller brings a pure step, an init function, a checkpointable data iterator and a config; runloop owns the one
train state and step every task uses (`TrainState`; `make_step_fn`: a loss and an optax transform in, the pure step
out; `measure_step`: its FLOPs), the run directory (config, lock, atomic files, typed records), the loop (sharded
init, one compile, FLOPs of the compiled step, host syncs only at cadences, NaN guard, checkpoints, evals, stop on
signal), resume (same-run check, fallback past an unreadable checkpoint, ``resume_from``), metrics (JSONL,
TensorBoard, one progress line with images/s, FLOPs, ETA and CO2), sharding and durations. The optax transforms the
packages' optimizers compose (adaptive gradient clipping, SAM, per-tensor clipping, dtype promotion, per-leaf
scales) live in `runloop.optim`.
"""

import sys

from . import (
    atomic_files,
    cadence,
    checkpoints,
    compilation_cache,
    durations,
    jsonable,
    loop,
    loop_config,
    metrics_log,
    nonfinite,
    optim,
    progress,
    records,
    run_directory,
    run_lock,
    sharding,
    step_program,
    stop_signal,
    train_state,
)
from .atomic_files import json_bytes, write_bytes_atomic, write_files_atomic, write_json_atomic
from .cadence import due
from .checkpoints import Checkpointer, Restored, all_finite
from .compilation_cache import CACHE_ENV, compilation_cache_dir, enable_compilation_cache, persistent_cache_hits
from .durations import steps_to_epochs, steps_to_examples, to_steps
from .jsonable import to_jsonable
from .loop import HeldOut, LoopResult, TrainTask, train
from .loop_config import LoopConfig
from .memory import available_memory_bytes, check_fits_memory
from .metrics_log import MetricsLog, check_tensorboard, read_metrics
from .nonfinite import NonFiniteError, NonFiniteGuard, OptionNames
from .optim import agc, per_tensor_clip, sam, scale_by_tree, standard_promotion
from .progress import Co2Model, Progress, detect_hardware
from .records import PretrainSummary, Record
from .run_directory import RunDirectory, config_differences, holds_run, open_run
from .run_lock import RunInUseError, RunLock
from .sharding import (
    batch_sharding,
    check_batch_size,
    initialize_distributed,
    is_array_like,
    make_mesh,
    put_batch,
    replicated,
    shard_state,
    state_shardings,
    sync_processes,
)
from .step_program import CompiledStep, abstract_state, compile_step, init_sharded
from .stop_signal import StopSignal
from .train_state import TrainState, count_step, global_norm, init_train_state, make_step_fn, measure_step

# The transforms' modules were `runloop.agc`, `runloop.sam`, `runloop.per_tensor_clip` and `runloop.transforms`
# before they moved into `runloop.optim`: those import paths keep working.
for _old, _module in {"agc": agc, "sam": sam, "per_tensor_clip": per_tensor_clip, "transforms": optim}.items():
    sys.modules[f"{__name__}.{_old}"] = _module
transforms = optim

# The one place the version is written (pyproject.toml reads it: [tool.setuptools.dynamic]).
__version__ = "0.2.0"

__all__ = [
    "CACHE_ENV",
    "Checkpointer",
    "Co2Model",
    "CompiledStep",
    "HeldOut",
    "LoopConfig",
    "LoopResult",
    "MetricsLog",
    "available_memory_bytes",
    "check_fits_memory",
    "check_tensorboard",
    "NonFiniteError",
    "NonFiniteGuard",
    "OptionNames",
    "PretrainSummary",
    "Progress",
    "Restored",
    "RunDirectory",
    "RunInUseError",
    "Record",
    "RunLock",
    "StopSignal",
    "TrainState",
    "TrainTask",
    "abstract_state",
    "all_finite",
    "atomic_files",
    "batch_sharding",
    "cadence",
    "check_batch_size",
    "checkpoints",
    "compilation_cache",
    "compilation_cache_dir",
    "compile_step",
    "count_step",
    "config_differences",
    "detect_hardware",
    "due",
    "durations",
    "enable_compilation_cache",
    "global_norm",
    "holds_run",
    "init_sharded",
    "init_train_state",
    "initialize_distributed",
    "is_array_like",
    "json_bytes",
    "jsonable",
    "loop",
    "loop_config",
    "make_mesh",
    "make_step_fn",
    "measure_step",
    "metrics_log",
    "nonfinite",
    "open_run",
    "optim",
    "persistent_cache_hits",
    "progress",
    "put_batch",
    "read_metrics",
    "records",
    "replicated",
    "run_directory",
    "run_lock",
    "scale_by_tree",
    "shard_state",
    "sharding",
    "standard_promotion",
    "state_shardings",
    "sync_processes",
    "step_program",
    "steps_to_epochs",
    "steps_to_examples",
    "stop_signal",
    "to_jsonable",
    "to_steps",
    "train",
    "train_state",
    "transforms",
    "write_bytes_atomic",
    "write_files_atomic",
    "write_json_atomic",
]

"""The run directory: created only when a run starts, locked while it runs, and checked to be the same run on
resume.

``open_run(path, config, resume=...)`` is a context manager around a run's lifetime::

    path/config.json    what defines the run (the caller's dict; written when the run starts)
    path/run.lock       held while the run is open (`runloop.run_lock`)

A new run refuses a directory that already holds one (``config.json``, checkpoints or metrics): nothing is
overwritten. ``resume=True`` on a directory that holds no run is an error (there is nothing to continue). On
resume, the recorded config is compared with the current one: every difference is listed as ``field: old ->
new`` in one ValueError, except the fields the caller declares may change (``may_change``, dotted paths such as
``"train.steps"``); the recorded config is then updated to the current values of those fields.

Paths in the config (``paths``: dotted fields such as ``"encoder"`` or ``"train.init_from"``) are recorded
relative to the run directory, so a tree of runs moved or copied whole (``mv``, ``cp -r``: a sweep folder) still
resumes; on resume a recorded path and the current one are the same when they name the same place (a path
recorded absolute by an older run included).

After the NaN guard stopped a run (``nonfinite.json``, written by `runloop.train`), a resume may also change the
fields the caller names in ``after_nonfinite`` (pre-training: the learning rate), e.g. to continue from the last
good checkpoint at a lower learning rate; ``config.json`` then keeps the current values and lists every such change
(field, old, new, the step the run had stopped at) under ``after_nonfinite``. A plain resume is allowed too.

Call ``open_run`` only after every cheap check of the run's arguments has passed (the directory is the first
side effect). A new run that fails before it wrote anything durable (no checkpoint, no metrics record: e.g. its
first batch had the wrong size) leaves no run behind, so the corrected command can simply be run again. In a
multi-host run only the primary process (``jax.process_index() == 0``) locks and writes; pass ``primary=False``
on the others.

Example::

    with open_run("runs/mae", {"model": "vit-b16", "steps": 1000}, resume=False) as run:
        ... write into run.path
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

from .atomic_files import write_json_atomic
from .checkpoints import kept_steps
from .jsonable import to_jsonable
from .loop_config import LoopConfig
from .run_lock import RunLock
from .sharding import sync_processes

__all__ = ["CONFIG_FILE", "LOCK_FILE", "NONFINITE_FILE", "RunDirectory", "config_differences", "holds_run", "open_run"]

CONFIG_FILE = "config.json"
LOCK_FILE = "run.lock"
NONFINITE_FILE = "nonfinite.json"  # written by runloop.train when the NaN guard stopped the run
AFTER_NONFINITE = "after_nonfinite"  # config.json's record of what a resume changed after such a stop
_RUN_MARKERS = (CONFIG_FILE, "checkpoints", "metrics.jsonl")
_ABSENT = "<absent>"


@dataclasses.dataclass(frozen=True)
class RunDirectory:
    """An open run: ``path``, whether it was ``resumed``, its ``config`` (as JSON data) and whether this process
    is the ``primary`` one (the one that writes files)."""

    path: Path
    resumed: bool
    config: dict[str, Any]
    primary: bool = True

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"


def holds_run(path: str | Path) -> bool:
    """True when ``path`` holds a run's files (config, checkpoints or metrics)."""
    return any((Path(path) / name).exists() for name in _RUN_MARKERS)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def config_differences(recorded: Mapping[str, Any], current: Mapping[str, Any],
                       may_change: Collection[str] = ()) -> list[str]:
    """``"field: old -> new"`` for every leaf (dotted path) that differs, except those in ``may_change`` (a
    dotted path there also covers every leaf below it, e.g. ``"train.option_names"``)."""
    old, new = _flatten(to_jsonable(dict(recorded))), _flatten(to_jsonable(dict(current)))
    out = []
    for key in sorted(set(old) | set(new)):
        if key in may_change or any(key.startswith(f"{field}.") for field in may_change):
            continue
        a, b = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if a != b:
            out.append(f"{key}: {a if a is _ABSENT else json.dumps(a)} -> {b if b is _ABSENT else json.dumps(b)}")
    return out


def _get(config: Mapping[str, Any], field: str) -> Any:
    value: Any = config
    for part in field.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _with(config: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    """A copy of ``config`` with the dotted ``field`` set to ``value``."""
    head, _, rest = field.partition(".")
    return {**config, head: _with(dict(config[head]), rest, value) if rest else value}


def _relative_paths(config: dict[str, Any], paths: Collection[str], run: Path) -> dict[str, Any]:
    """``config`` with each path field written relative to the run directory (the place it names, resolved)."""
    for field in paths:
        value = _get(config, field)
        if isinstance(value, str) and value:
            config = _with(config, field, os.path.relpath(Path(value).resolve(), run.resolve()))
    return config


def _as_recorded_here(recorded: dict[str, Any], paths: Collection[str], run: Path) -> dict[str, Any]:
    """``recorded`` with each path field relative to the run directory where it is now: a relative one as is,
    an absolute one (older runs) turned relative, so both compare as places with the current config."""
    for field in paths:
        value = _get(recorded, field)
        if isinstance(value, str) and os.path.isabs(value):
            recorded = _with(recorded, field, os.path.relpath(value, run.resolve()))
    return recorded


def _check_resumable(path: Path, config: dict[str, Any], may_change: Collection[str], resume_flag: str,
                     paths: Collection[str] = (), after_nonfinite: Collection[str] = ()) -> dict[str, Any]:
    """Raises unless ``config`` continues the recorded run; returns the config to record (with the changes a
    NaN stop allowed listed under ``after_nonfinite``)."""
    config_path = path / CONFIG_FILE
    try:
        recorded = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_path} is not a valid run config ({error})") from None
    if not isinstance(recorded, dict):
        raise ValueError(f"{config_path} is not a valid run config (not a JSON object)")
    history = list(recorded.get(AFTER_NONFINITE, []))
    stop = path / NONFINITE_FILE
    if after_nonfinite and stop.is_file():
        try:
            stopped_at = json.loads(stop.read_text()).get("step")
        except (OSError, ValueError, AttributeError):
            stopped_at = None
        for field in after_nonfinite:
            old, new = _get(recorded, field), _get(config, field)
            if old != new:
                history.append({"field": field, "old": old, "new": new, "stopped_at_step": stopped_at})
        may_change = (*may_change, *after_nonfinite)
    may_change = (*may_change, AFTER_NONFINITE)
    differences = config_differences(_as_recorded_here(recorded, paths, path), config, may_change)
    if differences:
        raise ValueError(
            f"{resume_flag}: {path} holds a different run; these settings differ from the recorded ones "
            f"(recorded -> now): {'; '.join(differences)}. Resume with the recorded settings, or start a new run "
            "in another directory"
        )
    return {**config, AFTER_NONFINITE: history} if history else config


def _check_length(path: Path, loop: LoopConfig) -> None:
    """A resumed run is the same run: it may grow, but never end before the step it would continue from."""
    names, steps = loop.option_names, kept_steps(path / "checkpoints")
    start = loop.resume_from if loop.resume_from is not None else (steps[-1] if steps else 0)
    if start > loop.steps:
        raise ValueError(
            f"{names.steps} {loop.steps}: {path} has already trained {start} steps, and a resumed run continues "
            f"the same run; pass {names.steps} {start} or more, {names.resume_from.replace('STEP', 'S')} with a "
            f"kept checkpoint S <= {loop.steps} (kept: {steps}), or start a new run in another directory")


def _check_start(path: Path, resume: bool, resume_flag: str) -> None:
    if resume and not (path / CONFIG_FILE).is_file():
        what = "does not exist" if not path.exists() else f"holds no run ({CONFIG_FILE} missing)"
        raise ValueError(f"{resume_flag}: {path} {what}; there is nothing to resume. Drop {resume_flag} to start "
                         "a new run there")
    if not resume and holds_run(path):
        raise ValueError(f"{path} already holds a run; pass {resume_flag} to continue it, or choose another "
                         "directory")


@contextlib.contextmanager
def open_run(path: str | Path, config: Mapping[str, Any], *, resume: bool, may_change: Collection[str] = (),
             primary: bool = True, resume_flag: str = "resume=True",
             loop: LoopConfig | None = None, paths: Collection[str] = (),
             after_nonfinite: Collection[str] = ()) -> Iterator[RunDirectory]:
    """Starts (``resume=False``) or continues (``resume=True``) the run in ``path``; yields a `RunDirectory`
    and releases the lock on exit. ``config`` must be JSON data (strict conversion: TypeError otherwise).
    ``resume_flag`` is how the caller's users spell "resume" (e.g. ``"--resume"``), used in errors. ``loop``:
    the run's engine settings; given, a resume that would continue from a checkpoint past ``loop.steps`` (fewer
    steps than already trained) is refused before ``config.json`` is touched, naming ``option_names.steps``.
    ``paths``: the dotted fields of ``config`` that hold filesystem paths (recorded relative to ``path``; see the
    module docstring); a field that is absent or empty is skipped. ``after_nonfinite``: dotted fields a resume
    may change after the NaN guard stopped the run (module docstring)."""
    path = Path(path)
    current = _relative_paths(to_jsonable(dict(config), CONFIG_FILE), paths, path)
    _check_start(path, resume, resume_flag)
    # Every process checks before the primary writes config.json: on storage all hosts share, a process that
    # checked later would find the primary's new run and refuse it (seen with two processes).
    sync_processes(f"runloop.open_run:{path}")
    if not primary:
        yield RunDirectory(path, resume, current, primary=False)
        return
    existed, discarded = path.exists(), False
    path.mkdir(parents=True, exist_ok=True)
    try:
        with RunLock(path / LOCK_FILE):
            _check_start(path, resume, resume_flag)  # again, under the lock: another process may have started
            if resume:
                current = _check_resumable(path, current, may_change, resume_flag, paths, after_nonfinite)
                if loop is not None:
                    _check_length(path, loop)
            before = {p.name for p in path.iterdir()}
            write_json_atomic(path / CONFIG_FILE, current)
            if resume:
                (path / NONFINITE_FILE).unlink(missing_ok=True)  # this process goes on; a new stop writes it again
            try:
                yield RunDirectory(path, resume, current)
            except BaseException:
                discarded = not resume and _discard_unstarted(path, before)
                raise
    finally:
        if (discarded or not (path / CONFIG_FILE).exists()) and not existed and not any(path.iterdir()):
            path.rmdir()  # a directory this call created for a run that never started


def _is_empty(path: Path) -> bool:
    return (path.is_dir() and not any(path.iterdir())) or (path.is_file() and path.stat().st_size == 0)


def _discard_unstarted(path: Path, before: set[str]) -> bool:
    """Removes the files of a new run that failed before writing anything durable (see the module docstring);
    returns whether it did."""
    new = [p for p in path.iterdir() if p.name not in before | {CONFIG_FILE, LOCK_FILE}]
    if not all(_is_empty(p) for p in new):
        return False
    for p in new:
        if p.is_dir():
            p.rmdir()
        else:
            p.unlink()
    (path / CONFIG_FILE).unlink(missing_ok=True)
    return True

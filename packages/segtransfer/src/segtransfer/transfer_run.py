"""What one transfer run (segmentation's `finetune_run`, detection's `detection_run`) does in its directory.

`run_in_directory` is the life of a run around the engine: open the run directory (lock, same-run check on
resume; `runloop.open_run`), return a finished run's ``run.json`` as is, otherwise build the task and its data
(the caller's ``start``), train (`runloop.train` on `data_parallel_mesh`), and write ``run.json`` last,
atomically; a stopped run returns ``{"status": "preempted", "step": s}``. `encoder_fields` is how a run's
``config.json`` records its encoder (its path and a fingerprint of its files: a resume after the encoder was
replaced is refused); paths are recorded relative to the run directory (`path_fields`), so a sweep folder moved
or copied whole resumes.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import jax
import runloop

from .encoders import encoder_identity, encoder_kind
from .records import EncoderInfo

__all__ = ["RUN_FILE", "data_parallel_mesh", "encoder_fields", "encoder_source", "path_fields", "run_in_directory",
           "stderr_log", "transfer_config"]

RUN_FILE = "run.json"


def stderr_log(message: str) -> None:
    """The default ``log`` of runs and studies: one line on stderr, flushed."""
    print(message, file=sys.stderr, flush=True)


def encoder_source(encoder: str) -> str:
    """The encoder as a run's ``config.json`` records it: ``"scratch"`` as is, a path resolved (`runloop.open_run`
    then writes it relative to the run directory: `path_fields`)."""
    return encoder if encoder_kind(encoder) == "scratch" else str(Path(encoder).resolve())


def encoder_fields(encoder: str) -> dict[str, Any]:
    """The encoder's part of a run's ``config.json``: where it is and what it holds (`encoder_identity`)."""
    return {"encoder": encoder_source(encoder), "encoder_identity": encoder_identity(encoder)}


def transfer_config(section: str, record: dict[str, Any], encoder: str, model: str | None, *,
                    later: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A transfer run's ``config.json``: ``{section: record}`` (the run's own settings), `encoder_fields` and the
    model preset. ``later``: fields of ``record`` added after runs were first written -> the value every earlier
    run had; recorded only where a run differs from it, so a run directory from before passes the same-run check
    on resume."""
    kept = {k: v for k, v in record.items() if not (later and k in later and v == later[k])}
    return {section: kept, **encoder_fields(encoder), "model": model}


def path_fields(run_config: dict[str, Any], section: str) -> tuple[str, ...]:
    """The fields of a transfer run's config that are paths: the encoder (unless scratch) and the dataset."""
    return (*(() if run_config["encoder"] == "scratch" else ("encoder",)), f"{section}.dataset_dir")


def _check_same_encoder(out_dir: Path, run_config: dict[str, Any]) -> tuple[str, ...]:
    """A resumed (or finished) run must go on with the encoder it started from: ValueError naming the encoder
    path when the files there changed. Returns the fields the same-run check must skip: the identity of a run
    from before it was recorded (that run is checked by its encoder path alone, as then)."""
    try:
        recorded = json.loads((out_dir / runloop.run_directory.CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return ()  # no run yet, or a broken config.json: runloop.open_run says so
    if not isinstance(recorded, dict) or "encoder_identity" not in recorded:
        return ("encoder_identity",)
    if not _same_place(out_dir, recorded.get("encoder"), run_config["encoder"]):
        return ()  # another --encoder: the same-run check names that change
    if recorded["encoder_identity"] != run_config["encoder_identity"]:
        raise ValueError(
            f"encoder {run_config['encoder']!r} is not the encoder the run in {out_dir} started from: its files "
            f"changed since ({recorded['encoder_identity']} -> {run_config['encoder_identity']}); fine-tune this "
            "encoder into a new folder, or put the original encoder back to continue")
    return ()


def _same_place(out_dir: Path, recorded: Any, given: str) -> bool:
    """Whether a recorded encoder (a path relative to the run folder, an absolute one, or "scratch") names the
    place ``given`` names."""
    if recorded == given:
        return True
    if not isinstance(recorded, str) or "scratch" in (recorded, given):
        return False
    return (out_dir / recorded).resolve() == Path(given).resolve()


def data_parallel_mesh(batch_size: int, log: Callable[[str], None]) -> jax.sharding.Mesh:
    """All devices on one data axis when ``batch_size`` splits over them; else one device (and says so)."""
    devices = jax.devices()
    if batch_size % len(devices):
        log(f"batch {batch_size} does not split over {len(devices)} devices; fine-tuning on one device")
        devices = devices[:1]
    return runloop.make_mesh(devices)


def run_in_directory(
    out_dir: str | Path,
    section: str,
    record: dict[str, Any],
    loop: runloop.LoopConfig,
    *,
    encoder: str,
    model: str | None,
    later: Mapping[str, Any] | None = None,
    may_change: Collection[str],
    start: Callable[[], tuple[runloop.TrainTask, Iterator[Any], EncoderInfo]],
    result: Callable[[dict[str, Any]], dict[str, Any]],
    summary: Callable[[dict[str, Any]], str],
    resume: bool = False,
    stop: Callable[[int], bool] | None = None,
    log: Callable[[str], None] = stderr_log,
    resume_flag: str = "resume=True",
) -> dict[str, Any]:
    """Runs (or resumes) one run in ``out_dir`` (module docstring); returns ``run.json``'s content, or
    ``{"status": "preempted", "step": s}`` when a signal or ``stop(step)`` stopped it after a checkpoint.

    ``config.json`` is `transfer_config` of ``section``, ``record``, ``encoder``, ``model`` and ``later``
    (``record["dataset_dir"]`` and the encoder are paths: `path_fields`).
    ``loop``: the engine's settings (its ``option_names`` spell ``resume`` as ``resume_flag``). ``start()`` ->
    (engine task, training data iterator, the encoder's provenance), called only when the run has to train;
    ``result(metrics)`` -> the task's fields of ``run.json`` from the final evaluation, to which the run adds
    ``status``, ``final_loss``, ``flops_per_step``/``macs_per_step`` (of the compiled step) and ``encoder`` (the
    provenance); ``summary(content)``: the line logged when a run finishes here.

    ``resume=False`` on a directory that already holds a run raises (nothing is overwritten); ``resume=True``
    returns a finished run's result as is, or continues from the newest readable checkpoint; either way the run
    must be the one recorded there (`runloop.open_run`, with ``may_change``: the fields that may differ), and a
    resume with other encoder files at the recorded path is refused, naming it. ``resume_flag``: how the caller's
    users spell ``resume`` (for errors).
    """
    out_dir = Path(out_dir)
    run_config = transfer_config(section, record, encoder, model, later=later)
    loop = dataclasses.replace(loop, option_names=runloop.OptionNames(resume=resume_flag))
    mesh = data_parallel_mesh(loop.batch_size, log)
    legacy = _check_same_encoder(out_dir, run_config) if resume else ()
    with runloop.open_run(out_dir, run_config, resume=resume, may_change=(*may_change, *legacy),
                          primary=jax.process_index() == 0, resume_flag=resume_flag,
                          paths=path_fields(run_config, section)) as run:
        if (out_dir / RUN_FILE).exists():
            try:
                return json.loads((out_dir / RUN_FILE).read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise ValueError(f"{out_dir / RUN_FILE} is not valid JSON ({error}); move it away to run again, "
                                 "or restore it") from None
        task, data, provenance = start()
        trained = runloop.train(task, data, loop, run, mesh=mesh, stop=stop, log=log)
        if not trained.completed:
            return {"status": "preempted", "step": trained.step}
        out = runloop.to_jsonable({
            "status": "done", **result(trained.evals[-1]), "final_loss": trained.final_loss,
            "flops_per_step": trained.flops_per_step,
            "macs_per_step": None if trained.cost is None else float(trained.cost.macs),
            "encoder": provenance.to_json()}, RUN_FILE)  # as run.json holds it (NaN -> null): a resume returns the same
        if run.primary:
            runloop.write_json_atomic(out_dir / RUN_FILE, out)
    log(summary(out))
    return out

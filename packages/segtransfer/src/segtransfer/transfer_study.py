"""What a transfer study (segmentation's `run_study`, detection's `detection_study`) checks before it runs, and
how its result is read back.

A study keeps its runs under ``out_dir/runs/`` and writes ``out_dir/result.json`` (`RESULT_FILE`) last; a new
study needs an ``out_dir`` without a result, a resumed one needs its runs there (`check_study_dir`), and the
seeds must be distinct, at least one (`check_seeds`). Both raise before anything is written. `read_result`
reads a finished study's ``result.json`` as its record (`segtransfer.records`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runloop import Record

__all__ = ["RESULT_FILE", "check_seeds", "check_study_dir", "read_result"]

RESULT_FILE = "result.json"


def check_study_dir(out_dir: str | Path, *, resume: bool, resume_flag: str, runs: str) -> None:
    """ValueError when ``out_dir`` already holds a result and ``resume`` is off, or ``resume`` is on and there is
    nothing to resume; ``runs`` names what the study runs (e.g. "detection runs"), ``resume_flag`` how the
    caller's users spell ``resume``."""
    out_dir = Path(out_dir)
    if (out_dir / RESULT_FILE).exists() and not resume:
        raise ValueError(f"out_dir={str(out_dir)!r} already holds {RESULT_FILE}; pass {resume_flag} or another dir")
    if resume and not (out_dir / "runs").is_dir():
        raise ValueError(f"{resume_flag}: {out_dir} holds no {runs}; there is nothing to resume. Drop "
                         f"{resume_flag} to start")


def check_seeds(seeds: Sequence[int]) -> None:
    """ValueError unless ``seeds`` are distinct, at least one."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds={list(seeds)!r}: expected distinct seeds, at least one")


def read_result(out_dir: str | Path, record: type[Record]) -> dict[str, Any] | None:
    """``out_dir/result.json`` checked as a ``record`` (e.g. `segtransfer.records.DetectionResult`) and returned
    as its JSON; None when the study has written none yet; ValueError naming the file when it is not one."""
    path = Path(out_dir) / RESULT_FILE
    return record.read(path).to_json() if path.is_file() else None

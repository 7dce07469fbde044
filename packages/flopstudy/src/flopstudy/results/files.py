"""Reading the results table from ``results.csv``, ``results.jsonl`` or a sweep root, and writing it back.

Bad input never stops the rest: a broken or foreign file, a row with a value out of range, or a duplicate row is
recorded as a `Problem` naming the file (and line) and left out; only "nothing usable at all" is an error.

    loaded = load_results(["runs/demo"])       # results.csv at the root, else results.jsonl, else the
    loaded.rows, loaded.problems               # fine-tuning result.json files below (collect_finetune_results)
"""

from __future__ import annotations

import csv
import json
import os
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .finetune_outputs import collect_finetune_results
from .loaded import LoadedResults, Problem
from .rows import COLUMNS, REQUIRED_COLUMNS, ResultRow

__all__ = ["LoadedResults", "Problem", "load_results", "read_results_file", "write_results_csv", "write_results_jsonl"]

RESULTS_CSV = "results.csv"
RESULTS_JSONL = "results.jsonl"


def _records_csv(path: Path) -> Iterable[tuple[int, dict[str, Any] | ValueError]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise ValueError(f"not a results table: no column(s) {missing} (header {header[:12]})")
        for record in reader:
            if None in record:  # more cells than header names
                yield reader.line_num, ValueError(f"{len(record[None])} cell(s) beyond the header")
            else:
                yield reader.line_num, record


def _records_jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any] | ValueError]]:
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                yield number, ValueError(f"not JSON ({err.msg})")
                continue
            if not isinstance(record, dict):
                yield number, ValueError(f"expected a JSON object, got {type(record).__name__}")
            else:
                yield number, record


def read_results_file(path: str | Path) -> LoadedResults:
    """Rows of one ``.csv`` or ``.jsonl`` results file. A bad row or line is a `Problem` (``file:line``) and
    skipped; a file that is not a results table at all (unreadable, foreign header) is one `Problem`."""
    path = Path(path)
    reader = {".csv": _records_csv, ".jsonl": _records_jsonl}.get(path.suffix)
    if reader is None:
        return LoadedResults((), (Problem(str(path), "not a results file: expected .csv or .jsonl"),), ())
    rows, problems = [], []
    try:
        for line, record in reader(path):
            try:
                if isinstance(record, ValueError):
                    raise record
                rows.append(ResultRow.from_record(record))
            except ValueError as err:
                problems.append(Problem(f"{path}:{line}", f"row left out: {err}"))
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as err:
        return LoadedResults((), (Problem(str(path), f"file skipped: {err}"),), ())
    return LoadedResults(tuple(rows), tuple(problems), (str(path),))


def _load_one(path: Path) -> LoadedResults:
    if not path.exists():
        raise ValueError(f"RESULTS {str(path)!r} does not exist")
    if path.is_file():
        return read_results_file(path)
    for name in (RESULTS_CSV, RESULTS_JSONL):
        if (path / name).is_file():
            return read_results_file(path / name)
    return collect_finetune_results(path)


def _drop_duplicates(loaded: LoadedResults) -> LoadedResults:
    seen: dict[tuple, ResultRow] = {}
    problems = list(loaded.problems)
    for row in loaded.rows:
        key = (*row.curve_key, row.pretrain_steps, row.pretrain_flops, row.pretrain_seed, row.seed)
        if key in seen:
            problems.append(Problem(row.run_dir or "results", f"duplicate row left out: {row.describe()}"))
        else:
            seen[key] = row
    return LoadedResults(tuple(seen.values()), tuple(problems), loaded.sources)


def load_results(paths: Sequence[str | Path]) -> LoadedResults:
    """Rows from every path: a results ``.csv``/``.jsonl`` file, or a folder holding ``results.csv`` (the sweep
    contract), else ``results.jsonl``, else fine-tuning ``result.json`` files below it.

    Raises ValueError when a path does not exist or when no valid row was found at all (listing what was
    tried and every problem); otherwise bad files and rows are in ``problems``.
    """
    if not paths:
        raise ValueError("RESULTS: expected at least one results file or folder")
    loaded = LoadedResults((), (), ())
    for path in paths:
        loaded = loaded.merged(_load_one(Path(path)))
    if not loaded.rows:
        where = ", ".join(str(p) for p in paths)
        detail = "; ".join(str(p) for p in loaded.problems[:5]) if loaded.problems else "nothing found"
        raise ValueError(f"no result rows in {where}: expected {RESULTS_CSV}, {RESULTS_JSONL} or fine-tuning "
                         f"result.json files ({detail})")
    return _drop_duplicates(loaded)


def write_results_csv(rows: Sequence[ResultRow], path: str | Path) -> None:
    """Writes ``rows`` as a results table (schema columns in `COLUMNS` order, then extra columns sorted),
    atomically: a temporary file in the same folder, then a rename. Empty cells for missing values."""
    path = Path(path)
    extras = sorted({k for row in rows for k in row.extras} - {c.name for c in COLUMNS})
    header = [c.name for c in COLUMNS] + extras
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "x", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=header)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if v is None else v) for k, v in row.to_record().items()})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_results_jsonl(rows: Sequence[ResultRow], path: str | Path) -> None:
    """Writes ``rows`` as JSON lines (one object per row, schema columns then extras, ``null`` for missing
    values), atomically like `write_results_csv`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "x") as handle:
            for row in rows:
                handle.write(json.dumps(row.to_record(), allow_nan=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""All-or-nothing output folders that a command owns: files are written into a hidden staging folder beside the
target, which then replaces the target by renames, so a killed run leaves either the old folder or the new one,
never a mix. The folder gets a marker file (`MARKER`) listing what was written there; a later run replaces the
folder only when it holds nothing else (the user's own files are never deleted) and is not one of its inputs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["MARKER", "REPORT_FILES", "check_replaceable", "staged_dir"]

MARKER = ".flopwise-report.json"  # {"written_by": "flopwise-report", "files": [names written there]}
REPORT_FILES = re.compile(r"^(report\.(json|md|html)|results\.csv|[^/]+\.png)$")
_LEGACY_SIGNATURE = ("report.json", "report.md", "report.html")  # a report written before the marker existed


def _owned(out: Path) -> set[str] | None:
    """The names the report wrote into ``out`` (marker included), or None when ``out`` is not a report folder.
    A folder from before the marker counts when it holds a whole report and only report files."""
    marker = out / MARKER
    if marker.is_file():
        try:
            files = json.loads(marker.read_text())["files"]
        except (ValueError, KeyError, TypeError):
            return None
        return {str(name) for name in files} | {MARKER}
    names = {p.name for p in out.iterdir()}
    if all((out / n).is_file() for n in _LEGACY_SIGNATURE) and all(REPORT_FILES.match(n) for n in names):
        return names
    return None


def check_replaceable(out: Path, inputs: Sequence[str | Path] = ()) -> None:
    """ValueError naming ``--out`` unless ``out`` is absent, empty, or a folder this module wrote that holds
    nothing else since (its `MARKER` lists every entry); also when ``out`` is, or holds, one of ``inputs``
    (a report never overwrites the table it reads)."""
    where = out.resolve()
    for source in inputs:
        path = Path(source).resolve()
        if path == where or where in path.parents:
            raise ValueError(f"--out {str(out)!r} holds this report's input {str(source)!r}; write the report into "
                             "another folder (the input is never overwritten)")
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a folder")
    names = {p.name for p in out.iterdir()}
    if not names:
        return
    owned = _owned(out)
    if owned is None:
        raise ValueError(f"--out {str(out)!r} is not empty and was not written by flopwise-report (no {MARKER}; "
                         f"it holds {sorted(names)[:5]}); choose an empty or new folder (nothing is overwritten)")
    foreign = sorted(names - owned)
    if foreign:
        raise ValueError(f"--out {str(out)!r} holds files the report did not write ({foreign[:5]}); move them "
                         "away or choose another folder (nothing is overwritten)")


def _fresh(out: Path, what: str) -> Path:
    """A new hidden folder beside ``out`` (created with the usual permissions, unlike ``tempfile.mkdtemp``)."""
    path = out.parent / f".{out.name}.{what}-{uuid.uuid4().hex[:12]}"
    path.mkdir()
    return path


@contextlib.contextmanager
def staged_dir(out: str | Path, inputs: Sequence[str | Path] = ()) -> Iterator[Path]:
    """Yields an empty staging folder; on normal exit it writes the `MARKER` listing what the caller wrote there
    and replaces ``out`` (checked with `check_replaceable` first, and again just before the swap), on an
    exception it is removed and ``out`` is untouched."""
    out = Path(out)
    check_replaceable(out, inputs)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = _fresh(out, "partial")
    try:
        yield staging
        written = sorted(p.name for p in staging.iterdir())
        (staging / MARKER).write_text(json.dumps({"written_by": "flopwise-report", "files": written}) + "\n")
        check_replaceable(out, inputs)  # a file the user put there while the report was being computed
        old = None
        if out.exists():
            old = _fresh(out, "old")
            os.replace(out, old / out.name)
        os.replace(staging, out)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

"""All-or-nothing output folders: files are written into a hidden staging folder beside the target, which then
replaces the target by renames, so a killed run leaves either the old folder or the new one, never a mix."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["REPORT_FILES", "check_replaceable", "staged_dir"]

REPORT_FILES = re.compile(r"^(report\.(json|md|html)|results\.csv|[^/]+\.png)$")


def check_replaceable(out: Path) -> None:
    """ValueError unless ``out`` is absent, empty, or holds only report files (``REPORT_FILES``): a folder with
    anything else is never replaced."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a folder")
    foreign = sorted(p.name for p in out.iterdir() if not (p.is_file() and REPORT_FILES.match(p.name)))
    if foreign:
        raise ValueError(f"--out {str(out)!r} holds files that are not a report's ({foreign[:5]}); choose an empty "
                         "or new folder (nothing is overwritten)")


def _fresh(out: Path, what: str) -> Path:
    """A new hidden folder beside ``out`` (created with the usual permissions, unlike ``tempfile.mkdtemp``)."""
    path = out.parent / f".{out.name}.{what}-{uuid.uuid4().hex[:12]}"
    path.mkdir()
    return path


@contextlib.contextmanager
def staged_dir(out: str | Path) -> Iterator[Path]:
    """Yields an empty staging folder; on normal exit it replaces ``out`` (checked with `check_replaceable`
    first), on an exception it is removed and ``out`` is untouched."""
    out = Path(out)
    check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = _fresh(out, "partial")
    try:
        yield staging
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

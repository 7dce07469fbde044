"""The metrics log of a run: ``metrics.jsonl`` (one JSON object per line) plus TensorBoard when asked.

A resumed run continues the file from the step it resumed at: records past that step (written after the
checkpoint the run resumed from) are dropped first, so the log never holds a step twice, and a partial last
line (the process was killed mid-write) is dropped with a warning. A damaged line anywhere else is an error
naming the file and line: the log is not silently rewritten.

Example::

    log = MetricsLog(run_dir / "metrics.jsonl", resume_step=0)
    log.write({"step": 10, "loss": 0.69})
    log.close()
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any

from .atomic_files import write_bytes_atomic
from .jsonable import to_jsonable

__all__ = ["MetricsLog", "check_tensorboard", "read_metrics"]


def check_tensorboard(option: str = "tensorboard=True") -> None:
    """ValueError naming ``option`` (how the caller spells it, e.g. ``--tensorboard``) when tensorboardX, the
    optional extra ``runloop[tensorboard]``, is not installed."""
    if importlib.util.find_spec("tensorboardX") is None:
        raise ValueError(f"{option}: TensorBoard event files need tensorboardX, which is not installed; install "
                         "the extra with pip install 'runloop[tensorboard]' (or pip install tensorboardX)")


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a ``metrics.jsonl``; a partial last line is dropped with a warning, other damaged lines
    raise ValueError naming the file and line."""
    path = Path(path)
    lines = path.read_text().splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            if number == len(lines):
                warnings.warn(f"{path}: dropped a partial last line ({line[:40]!r}...), left by a killed run",
                              RuntimeWarning, stacklevel=2)
                continue
            raise ValueError(f"{path} line {number} is not a JSON record ({error}); fix or remove that line") from None
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            raise ValueError(f"{path} line {number} has no integer 'step'; expected a metrics record")
        records.append(record)
    return records


class MetricsLog:
    """Appends records (dicts with an integer ``"step"``) to ``path``, mirrored to TensorBoard (``tensorboardX``,
    under ``<dir>/tensorboard``) when ``tensorboard=True``.

    ``resume_step``: the step the run starts at (0 for a new run); existing records past it are dropped.
    ``enabled=False`` writes nothing (the non-primary processes of a multi-host run).
    """

    def __init__(self, path: str | Path, *, resume_step: int, tensorboard: bool = False,
                 enabled: bool = True) -> None:
        self.path = Path(path)
        self._file = None
        self._tb = None
        if not enabled:
            return
        if tensorboard:
            check_tensorboard()
        if self.path.exists():
            kept = [r for r in read_metrics(self.path) if r["step"] <= resume_step]
            write_bytes_atomic(self.path, "".join(_line(r) for r in kept).encode())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a")
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(str(self.path.parent / "tensorboard"))

    def write(self, record: dict[str, Any]) -> None:
        """Appends ``record`` (strict JSON conversion; non-finite numbers become null) and flushes."""
        if not isinstance(record.get("step"), int):
            raise ValueError(f"record={record!r}; expected an integer 'step'")
        if self._file is None:
            return
        clean = to_jsonable(record, "metrics record")
        self._file.write(json.dumps(clean, sort_keys=True, allow_nan=False) + "\n")
        self._file.flush()
        if self._tb is not None:
            for name, value in clean.items():
                if name != "step" and isinstance(value, int | float) and not isinstance(value, bool):
                    self._tb.add_scalar(name, float(value), clean["step"])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._tb is not None:
            self._tb.close()


def _line(record: dict[str, Any]) -> str:
    return json.dumps(to_jsonable(record, "metrics record"), sort_keys=True, allow_nan=False) + "\n"

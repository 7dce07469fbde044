"""The files of a run directory: atomic JSON results and the metrics log (JSONL, plus TensorBoard if installed).

Result files are written to a temporary file in the same directory and renamed over the target (``os.replace``
is atomic on POSIX), so a reader or a killed run never sees half a file.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def _jsonable(value: Any) -> Any:
    """Numbers (numpy/jax scalars included) -> int/float; non-finite floats -> None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    array = np.asarray(value)
    if array.ndim == 0 and array.dtype.kind in "iu":
        return int(array)
    if array.ndim == 0 and array.dtype.kind == "b":
        return bool(array)
    if array.ndim == 0 and array.dtype.kind == "f":
        return _jsonable(float(array))
    return str(value)


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Writes ``obj`` as indented JSON to ``path`` via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_jsonable(obj), f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl`` (a resumed run continues the file; records past the
    resumed step are dropped first so the log has no duplicate steps); mirrors scalars to TensorBoard when
    ``tensorboard=True`` and ``tensorboardX`` is installed."""

    def __init__(self, path: str | Path, *, tensorboard: bool = False, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= resume_step]
            write_bytes_atomic(self.path, "".join(line + "\n" for line in kept).encode())
        elif resume_step is None and self.path.exists():
            self.path.unlink()
        self._file = self.path.open("a")
        self._tb = None
        if tensorboard and importlib.util.find_spec("tensorboardX") is not None:
            from tensorboardX import SummaryWriter  # optional dependency

            self._tb = SummaryWriter(str(self.path.parent / "tensorboard"))

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(_jsonable(record), sort_keys=True) + "\n")
        self._file.flush()
        if self._tb is not None:
            step = int(record["step"])
            for name, value in record.items():
                if name != "step" and isinstance(value, int | float) and math.isfinite(float(value)):
                    self._tb.add_scalar(name, float(value), step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()

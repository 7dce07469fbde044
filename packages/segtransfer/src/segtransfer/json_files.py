"""Result files: JSON written atomically (temporary file + rename), numpy/JAX scalars converted, NaN -> null."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["to_jsonable", "write_json_atomic"]


def to_jsonable(value: Any) -> Any:
    """Dicts/lists/tuples/arrays recursively to JSON types; non-finite floats -> None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    array = np.asarray(value)
    if array.ndim > 0:
        return [to_jsonable(v) for v in array.tolist()]
    if array.dtype.kind in "iu":
        return int(array)
    if array.dtype.kind == "b":
        return bool(array)
    if array.dtype.kind == "f":
        return to_jsonable(float(array))
    raise TypeError(f"value={value!r} ({type(value).__name__}): not convertible to JSON")


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Writes ``obj`` as indented JSON to ``path`` via a temporary file in the same directory and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(to_jsonable(obj), f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

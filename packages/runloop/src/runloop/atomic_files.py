"""Files that are never half-written: write to a temporary file in the target's directory, fsync, rename.

``os.replace`` is atomic on POSIX, so a reader (or a run killed mid-write) sees the old file or the new one, never
a mix. The temporary file is created with mode 0o666 filtered by the process umask, like ``open(path, "w")``
(``tempfile.mkstemp`` would give 0600 and make run files private by accident). JSON goes through the one strict
converter (`runloop.jsonable.to_jsonable`): an object it does not know is a TypeError, not a string.

Example::

    write_json_atomic(run_dir / "summary.json", summary.to_json())
    write_files_atomic(run_dir, {"encoder.eqx": weights, "encoder.json": config})   # in this order
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .jsonable import to_jsonable

__all__ = ["json_bytes", "write_bytes_atomic", "write_files_atomic", "write_json_atomic"]


def json_bytes(obj: Any, where: str = "value") -> bytes:
    """``obj`` as indented, key-sorted JSON text (strict conversion), newline-terminated, UTF-8."""
    return (json.dumps(to_jsonable(obj, where), indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Writes ``data`` to ``path`` via a temporary file and a rename; creates the parent directory."""
    if not isinstance(data, bytes | bytearray):
        raise TypeError(f"data is a {type(data).__name__}; expected bytes")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Writes ``obj`` as JSON (see `json_bytes`) to ``path`` atomically; TypeError, writing nothing, for data
    the converter does not know."""
    return write_bytes_atomic(path, json_bytes(obj, Path(path).name))


def write_files_atomic(directory: str | Path, files: Mapping[str, bytes]) -> Path:
    """Writes each ``name -> bytes`` of ``files`` into ``directory`` atomically, in the mapping's order.

    Order matters to readers that treat the last file as the marker of a complete set (an encoder's config is
    written after its weights). Names must be plain file names.
    """
    directory = Path(directory)
    for name in files:
        if not isinstance(name, str) or not name or Path(name).name != name:
            raise ValueError(f"files has the name {name!r}; expected plain file names inside {directory}")
    for name, data in files.items():
        write_bytes_atomic(directory / name, data)
    return directory

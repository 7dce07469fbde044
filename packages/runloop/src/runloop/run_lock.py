"""An exclusive lock on a run directory for the run's lifetime: ``run.lock`` with host, pid and start time.

The lock is a POSIX ``flock`` on the file, so the kernel drops it when its process dies, however it dies. A
second process that wants the directory is refused with the holder's host, pid and start time. A lock file left
by a dead process (the file is there but nobody holds the lock) is reported with a warning and taken over.
Release deletes the file. (``flock`` is per host on some network file systems; there the pid in the file is
what a person checks.)

Example::

    with RunLock(run_dir / "run.lock"):
        ...   # only this process writes into run_dir
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any

__all__ = ["RunInUseError", "RunLock", "describe_holder"]


class RunInUseError(ValueError):
    """Another live process holds the run directory's lock."""


def describe_holder(info: dict[str, Any]) -> str:
    """``pid 123 on host h since 2024-...`` from a lock file's content (``"unknown holder"`` when empty)."""
    if not info:
        return "an unknown holder"
    return f"pid {info.get('pid')} on host {info.get('host')} since {info.get('started_at')}"


def _read(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 65536).decode(errors="replace")
    try:
        info = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return {"content": text[:80]}
    return info if isinstance(info, dict) else {}


class RunLock:
    """Exclusive, non-blocking lock on ``path``; use as a context manager or with `acquire` / `release`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Takes the lock or raises RunInUseError naming the holder; warns when taking over a stale lock file."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this RunLock")
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read(fd)
                os.close(fd)
                raise RunInUseError(
                    f"{self.path.parent} is in use by another run ({describe_holder(holder)}); wait for it to "
                    f"finish or use another directory (lock file: {self.path})"
                ) from None
            try:
                same_file = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same_file = False
            if same_file:
                break
            os.close(fd)  # the holder released (deleted) the file between our open and flock: try again
        previous = _read(fd)
        if previous:
            warnings.warn(
                f"{self.path.parent}: taking over a stale lock left by {describe_holder(previous)}; that process "
                "no longer holds it (it died without releasing it)", RuntimeWarning, stacklevel=2)
        info = {"host": socket.gethostname(), "pid": os.getpid(),
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(info) + "\n").encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Deletes the lock file and drops the lock (a no-op when not held)."""
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # before unlocking: a waiter then re-opens a fresh file
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

"""Claim files: the only coordination between executors sharing one output folder (docs/design.md section 8).

An executor works on a run only while it holds the run's claim: ``claim.json`` created with ``O_CREAT | O_EXCL``
(so exactly one creator succeeds, also across hosts on a shared file system) holding the owner's host, pid and
start time. A claim whose owner is gone (this host, and no process with its pid) is taken over, with a message,
under a second exclusive ``.takeover`` file (so two takers never both remove it, and staleness is re-read while
holding it). A claim of another host
cannot be checked from here and is respected; delete it by hand if that host's job is known to be dead. A claim
still being written (empty) counts as held unless it is older than ``EMPTY_GRACE_SECONDS``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["Claim", "claim_holder", "owner_alive", "release", "release_dead_job", "try_claim"]

EMPTY_GRACE_SECONDS = 30.0


@dataclasses.dataclass(frozen=True)
class Claim:
    """A held claim (``path``), released with `release`."""

    path: Path
    host: str
    pid: int
    started: float


def _read(path: Path) -> dict[str, Any] | None:
    """The claim's owner record; None when there is no claim; {} while it is being written."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
        return data if isinstance(data, dict) else {}
    except json.JSONDecodeError:
        return {}


def owner_alive(owner: dict[str, Any], path: Path | None = None) -> bool:
    """False only when the owner is known to be gone: a process of this host that no longer exists, or an
    unreadable claim older than the grace period."""
    if not owner:
        try:
            return time.time() - path.stat().st_mtime < EMPTY_GRACE_SECONDS if path is not None else True
        except FileNotFoundError:
            return False
    if owner.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(owner["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # a process of another user holds that pid
    except (KeyError, TypeError, ValueError):
        return False
    return True


def claim_holder(path: Path) -> dict[str, Any] | None:
    """The live owner record of the claim at ``path`` (None when unclaimed or its owner is gone)."""
    owner = _read(path)
    if owner is None or not owner_alive(owner, path):
        return None
    return owner


def _create(path: Path) -> Claim | None:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    claim = Claim(path, socket.gethostname(), os.getpid(), time.time())
    with os.fdopen(fd, "w") as handle:
        json.dump({"host": claim.host, "pid": claim.pid, "started": claim.started,
                   "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claim.started)),
                   "slurm_job_id": os.environ.get("SLURM_JOB_ID")}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    return claim


def try_claim(path: str | Path, *, log: Callable[[str], None] = print) -> Claim | None:
    """The claim at ``path`` if this process gets it, else None (a live owner holds it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    claim = _create(path)
    if claim is not None or owner_alive(_read(path) or {}, path):
        return claim
    # The owner looks gone. Take over under a second exclusive file, so that two takers never both remove a
    # claim, and a fresh claim made meanwhile is never removed: staleness is re-read while holding it.
    lock = path.with_name(f"{path.name}.takeover")
    try:
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        with contextlib.suppress(FileNotFoundError):
            if time.time() - lock.stat().st_mtime > EMPTY_GRACE_SECONDS:
                lock.unlink()  # a taker that died while taking over
        return None
    try:
        owner = _read(path)
        if owner is not None:
            if owner_alive(owner, path):
                return None
            log(f"taking over {path}: its owner (host {owner.get('host')}, pid {owner.get('pid')}, since "
                f"{owner.get('started_at', '?')}) is gone")
            path.unlink(missing_ok=True)
        return _create(path)
    finally:
        lock.unlink(missing_ok=True)


def release_dead_job(path: str | Path, job_id: str) -> bool:
    """Removes the claim at ``path`` if SLURM job ``job_id`` held it (the driver knows that job ended)."""
    owner = _read(Path(path))
    if owner and owner.get("slurm_job_id") == str(job_id):
        Path(path).unlink(missing_ok=True)
        return True
    return False


def release(claim: Claim) -> None:
    """Removes the claim if this process still holds it (never another owner's)."""
    owner = _read(claim.path)
    if owner and owner.get("pid") == claim.pid and owner.get("host") == claim.host:
        claim.path.unlink(missing_ok=True)

"""Memory a run can use, checked before anything is compiled: a batch far too large for the devices would
otherwise end in XLA aborting the process (SIGABRT, a native stack) instead of an error naming the batch.

``check_fits_memory(needed_bytes, mesh, option="--batch 100000000")`` compares a lower bound of what one
training step needs (the caller's estimate, e.g. the input batch in float32 and one stored activation per
block) with what the mesh's devices offer: an accelerator's ``memory_stats()["bytes_limit"]``, or for CPU
devices the host's available memory (``MemAvailable`` of /proc/meminfo, shared by every CPU device). The bound
must stay below the truth, so a step that fits is never refused.
"""

from __future__ import annotations

import os

from jax.sharding import Mesh

__all__ = ["available_memory_bytes", "check_fits_memory"]


def _host_available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None  # unknown: nothing is refused


def available_memory_bytes(mesh: Mesh) -> int | None:
    """Bytes the mesh's devices offer together (module docstring); None when unknown."""
    devices = list(mesh.devices.flat)
    if all(device.platform == "cpu" for device in devices):
        return _host_available_bytes()
    limits = []
    for device in devices:
        stats = device.memory_stats() or {}
        if "bytes_limit" not in stats:
            return None
        limits.append(int(stats["bytes_limit"]))
    return sum(limits)


def check_fits_memory(needed_bytes: int | float, mesh: Mesh, *, option: str) -> None:
    """ValueError naming ``option`` when ``needed_bytes`` (a lower bound of one step's memory) exceeds what the
    mesh's devices offer."""
    available = available_memory_bytes(mesh)
    if available is not None and needed_bytes > available:
        raise ValueError(f"{option}: one training step needs at least {needed_bytes / 2**30:,.1f} GiB (the batch "
                         f"and its activations), but the {mesh.devices.size} device(s) offer "
                         f"{available / 2**30:,.1f} GiB; use a smaller batch or more devices")

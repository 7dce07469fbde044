"""`reuse_host_memory()`: stop XLA:CPU from page-faulting its temporary buffer in again at every step."""

import ctypes
import platform

# mallopt(3) parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_KEEP_BYTES = 2**31 - 1  # mallopt takes a C int: the largest trim threshold it accepts (2 GiB)


def reuse_host_memory() -> bool:
    """Make glibc's malloc keep large freed blocks and reuse them, for the whole process.

    XLA:CPU allocates each execution's temporary buffer (hundreds of MB for a ViT training step) on one of its
    worker threads. glibc serves a block that large with a fresh `mmap` and unmaps it when freed, so every step
    faults the whole buffer in again, page by page, and the kernel zeroes each page: about a quarter of a
    ViT-Ti/16 step's CPU time on a 2-core machine (docs/benchmarks.md, `benchmarks/vs_timm.py`).
    This sets M_ARENA_MAX=1 (every thread allocates from the main heap), M_MMAP_MAX=0 (large blocks come from
    that heap, not from mmap) and M_TRIM_THRESHOLD=2 GiB (freed memory stays mapped for the next step). The
    price: freed memory is kept by the process rather than returned to the system (the heap settles after a
    few steps at two to three times the largest buffer: posix_memalign asks for a little more than it later
    frees, so the first freed blocks do not fit), and threads share one malloc lock.

    Call it once at process start, before the first JAX computation: a thread that has already allocated keeps
    its own arena. Returns True when the settings were applied, False when the C library is not glibc (macOS,
    musl): then nothing was changed.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL("libc.so.6")
    for name, param, value in (
        ("M_ARENA_MAX", _M_ARENA_MAX, 1),
        ("M_MMAP_MAX", _M_MMAP_MAX, 0),
        ("M_TRIM_THRESHOLD", _M_TRIM_THRESHOLD, _KEEP_BYTES),
    ):
        if libc.mallopt(param, value) != 1:
            raise OSError(f"mallopt({name}, {value}) failed; this glibc does not accept the setting")
    return True

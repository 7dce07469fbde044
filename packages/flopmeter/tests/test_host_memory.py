"""reuse_host_memory: a repeated XLA:CPU execution stops page-faulting its buffers in (checked in fresh processes)."""

import platform
import subprocess
import sys

import pytest

# Each call of `double` allocates a 64 MiB output buffer (above glibc's largest mmap threshold, 32 MiB) and frees
# it. The script prints the minor page faults of two calls after twelve warm-up calls: with the setting, the
# heap needs a few calls to hold free blocks that fit (posix_memalign asks for a little more than it frees).
_SCRIPT = """
import resource, sys
import flopmeter
applied = flopmeter.reuse_host_memory() if sys.argv[1] == "reuse" else None
import jax, jax.numpy as jnp
double = jax.jit(lambda x: x * 2.0)
x = jnp.ones((4096, 4096), jnp.float32)
for _ in range(12):
    double(x).block_until_ready()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
double(x).block_until_ready()
double(x).block_until_ready()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_reuse_host_memory_stops_the_page_faults_of_repeated_executions():
    applied, faults = _faults("reuse")
    _, default_faults = _faults("default")
    assert applied == "True"
    assert default_faults > 30_000  # 2 x 64 MiB = 32,768 pages faulted in again by the default allocator
    assert faults < 1_000

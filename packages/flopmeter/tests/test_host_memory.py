"""reuse_host_memory: a repeated XLA:CPU execution mostly stops page-faulting its buffers in (fresh processes)."""

import platform
import subprocess
import sys

import pytest

# Each call of `double` allocates a 64 MiB output buffer (above glibc's largest mmap threshold, 32 MiB) and frees
# it. The script prints the minor page faults of ten calls after twelve warm-up calls: by default each call faults
# its 16,384 pages in again; with the setting the heap holds free blocks that fit after a few calls (posix_memalign
# asks for a little more than it frees), though now and then one call still finds none (measured: 0 to 65,537
# faults over the ten calls, against ~163,840 without the setting).
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
for _ in range(10):
    double(x).block_until_ready()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_reuse_host_memory_cuts_the_page_faults_of_repeated_executions():
    runs = [_faults("reuse") for _ in range(3)]
    _, default_faults = _faults("default")
    assert {applied for applied, _ in runs} == {"True"}
    assert default_faults > 150_000  # 10 x 64 MiB = 163,840 pages faulted in again by the default allocator
    # the mean of three processes: one call in a few still faults its buffer in (see above)
    assert sum(faults for _, faults in runs) / len(runs) < default_faults / 2

"""Wall-clock timing of compiled steps, measured peak FLOP/s and model FLOP utilisation (MFU)."""

import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from flopmeter.abstract_args import is_dynamic


def time_step(fn: Callable, *args: Any, warmup: int = 2, repeats: int = 10, **kwargs: Any) -> float:
    """Median seconds per call of `jax.jit(fn)(*args, **kwargs)`, compile time excluded.

    Arrays in `args`/`kwargs` are traced, everything else is static (as in `measure`). Each call waits for
    every output with `block_until_ready`, so asynchronous dispatch does not hide the work.
    """
    if warmup < 0 or repeats < 1:
        raise ValueError(
            f"warmup={warmup!r}, repeats={repeats!r} are invalid; expected warmup >= 0, repeats >= 1"
        )
    leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
    dynamic_at = [i for i, leaf in enumerate(leaves) if is_dynamic(leaf)]
    if any(isinstance(leaves[i], jax.ShapeDtypeStruct) for i in dynamic_at):
        raise TypeError(
            "time_step needs concrete arrays, got a jax.ShapeDtypeStruct; use measure() for abstract "
            "arguments"
        )

    def flat_fn(dynamic_leaves: list) -> Any:
        full = list(leaves)
        for i, value in zip(dynamic_at, dynamic_leaves, strict=True):
            full[i] = value
        call_args, call_kwargs = jax.tree_util.tree_unflatten(treedef, full)
        return fn(*call_args, **call_kwargs)

    compiled = jax.jit(flat_fn).lower([leaves[i] for i in dynamic_at]).compile()
    inputs = [jnp.asarray(leaves[i]) for i in dynamic_at]
    for _ in range(warmup):
        jax.block_until_ready(compiled(inputs))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(inputs))
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def peak_flops(*, size: int = 2048, dtype: str = "bfloat16", repeats: int = 5) -> float:
    """Measured FLOP/s of a `size` x `size` matmul at `dtype` on the default device (2 * size^3 per call).

    An achievable peak, not the datasheet one: use `flopmeter.hardware(name).peak_flops` for that.
    """
    if size < 1:
        raise ValueError(f"size={size!r} is invalid; expected a positive integer")
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.standard_normal((size, size), dtype=np.float32), dtype=dtype)
    b = jnp.asarray(rng.standard_normal((size, size), dtype=np.float32), dtype=dtype)
    seconds = time_step(jnp.matmul, a, b, warmup=1, repeats=repeats)
    return 2.0 * size**3 / seconds


def mfu(
    flops_per_step: float | int, seconds_per_step: float | int, peak_flops_per_second: float | int
) -> float:
    """Model FLOP utilisation: achieved FLOP/s (flops_per_step / seconds_per_step) over the peak."""
    if flops_per_step < 0 or seconds_per_step <= 0 or peak_flops_per_second <= 0:
        raise ValueError(
            f"flops_per_step={flops_per_step!r}, seconds_per_step={seconds_per_step!r}, "
            f"peak_flops_per_second={peak_flops_per_second!r}; expected >= 0, > 0, > 0"
        )
    return flops_per_step / seconds_per_step / peak_flops_per_second

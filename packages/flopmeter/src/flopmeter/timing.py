"""Wall-clock timing of compiled steps, measured peak FLOP/s and model FLOP utilisation (MFU)."""

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from flopmeter.abstract_args import is_dynamic
from flopmeter.data_tables import Hardware


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


# Square matmuls from cache-resident to large, and the ViT-B MLP's shapes (4096 tokens x 768 <-> 3072).
DEFAULT_PEAK_SHAPES = ((256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048),
                       (4096, 768, 3072), (4096, 3072, 768))


@dataclasses.dataclass(frozen=True)
class PeakTrial:
    """One timed matmul: `[m, k] @ [k, n]` at `dtype`, best of the timed calls."""

    shape: tuple[int, int, int]
    dtype: str
    seconds: float
    flops_per_second: float


@dataclasses.dataclass(frozen=True)
class PeakFlops:
    """The achievable peak: the fastest of several matmul shapes and dtypes, with everything tried."""

    flops_per_second: float
    shape: tuple[int, int, int]
    dtype: str
    device_kind: str
    trials: tuple[PeakTrial, ...]

    def table(self) -> str:
        """Markdown table of every trial, the winner marked."""
        lines = [f"peak on {self.device_kind}: {self.flops_per_second / 1e9:,.1f} GFLOP/s "
                 f"({'x'.join(map(str, self.shape))}, {self.dtype})", "",
                 "| m x k x n | dtype | ms | GFLOP/s |", "|---|---|---|---|"]
        for t in self.trials:
            mark = " (peak)" if (t.shape, t.dtype) == (self.shape, self.dtype) else ""
            lines.append(f"| {'x'.join(map(str, t.shape))} | {t.dtype} | {t.seconds * 1e3:.2f} | "
                         f"{t.flops_per_second / 1e9:,.1f}{mark} |")
        return "\n".join(lines)


def _time_matmul(m: int, k: int, n: int, dtype: str, calls: int, device: jax.Device) -> float:
    key_a, key_b = jax.random.split(jax.random.key(0))
    a = jax.device_put(jax.random.normal(key_a, (m, k), dtype), device)
    b = jax.device_put(jax.random.normal(key_b, (k, n), dtype), device)
    compiled = jax.jit(jnp.matmul).lower(a, b).compile()
    best = float("inf")
    for _ in range(calls):  # the first call doubles as warm-up: only the fastest call counts
        start = time.perf_counter()
        jax.block_until_ready(compiled(a, b))
        best = min(best, time.perf_counter() - start)
    return best


def peak_flops(
    *,
    shapes: Sequence[tuple[int, int, int]] = DEFAULT_PEAK_SHAPES,
    dtypes: Sequence[str] = ("float32", "bfloat16"),
    repeats: int = 2,
    device: jax.Device | None = None,
) -> PeakFlops:
    """Measured matmul peak of `device` (default: the first device): the fastest of every `(m, k, n)` in
    `shapes` at every dtype in `dtypes`, each the best of `repeats + 1` calls (2 * m * k * n FLOPs each).

    An achievable peak, not the datasheet one (`flopmeter.hardware(name).peak_flops`, dense bf16): one shape
    alone (e.g. 2048^3, slower than mid-size matmuls on a CPU) understates it and lets MFU read above 100%.
    The defaults take a few seconds on a 2-core CPU; pass `mfu` the result to compare a step against it.
    """
    if not shapes or any(len(s) != 3 or min(s) < 1 for s in shapes):
        raise ValueError(f"shapes={shapes!r} is invalid; expected a non-empty sequence of positive (m, k, n)")
    if not dtypes:
        raise ValueError(f"dtypes={dtypes!r} is invalid; expected at least one dtype name")
    for dtype in dtypes:
        if not jnp.issubdtype(jnp.dtype(dtype), jnp.floating):
            raise ValueError(f"dtypes={dtypes!r} contains {dtype!r}; expected floating dtypes")
    if repeats < 1:
        raise ValueError(f"repeats={repeats!r} is invalid; expected >= 1")
    device = jax.devices()[0] if device is None else device
    trials = []
    for dtype in dtypes:
        for m, k, n in shapes:
            seconds = _time_matmul(m, k, n, dtype, repeats + 1, device)
            trials.append(PeakTrial((m, k, n), str(jnp.dtype(dtype)), seconds, 2.0 * m * k * n / seconds))
    best = max(trials, key=lambda t: t.flops_per_second)
    return PeakFlops(best.flops_per_second, best.shape, best.dtype, device.device_kind, tuple(trials))


def mfu(
    flops_per_step: float | int,
    seconds_per_step: float | int,
    peak: "float | int | PeakFlops | Hardware",
) -> float:
    """Model FLOP utilisation: achieved FLOP/s (flops_per_step / seconds_per_step) over `peak`, which is a
    number (FLOP/s), a measured `PeakFlops` (`peak_flops()`) or a hardware-table row (its dense bf16 peak).

    Count `flops_per_step` in the same convention as the peak: a whole-program count over N devices against
    N times one device's peak, or `Cost.flops_per_device` against one device's.
    """
    if isinstance(peak, PeakFlops):
        peak_value = peak.flops_per_second
    elif isinstance(peak, Hardware):
        peak_value = peak.peak_flops
    else:
        peak_value = peak
    if flops_per_step < 0 or seconds_per_step <= 0 or peak_value <= 0:
        raise ValueError(
            f"flops_per_step={flops_per_step!r}, seconds_per_step={seconds_per_step!r}, "
            f"peak={peak_value!r}; expected >= 0, > 0, > 0"
        )
    return flops_per_step / seconds_per_step / peak_value

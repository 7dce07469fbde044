"""`measure(fn, *args, **kwargs) -> Cost`: compile (never run) and read XLA's cost and memory analyses;
`measure_lowered`: the same count on the lowered program, without compiling it."""

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax

from flopmeter.abstract_args import partition_call
from flopmeter.cost import Cost
from flopmeter.hlo_loops import LoopCounts, count_hlo

_COST_KEYS = ("flops", "transcendentals", "bytes accessed")


def normalise_cost_analysis(raw: Any) -> tuple[dict[str, float], list[str]]:
    """Turn whatever `cost_analysis()` returned into `{"flops", "transcendentals", "bytes accessed"}`, notes.

    JAX before 0.4.38 returns a list with one dict per program, later versions a dict, and some backends None.
    Negative values (XLA reports -1 for custom calls it cannot cost, e.g. cuBLAS on GPU) are never summed in:
    they are dropped and named in the notes. A missing key is reported as 0 with a note.
    """
    notes: list[str] = []
    if raw is None:
        return {k: 0.0 for k in _COST_KEYS}, ["cost_analysis() returned None: XLA figures unavailable"]
    if isinstance(raw, Mapping):
        programs: Sequence[Mapping] = [raw]
    elif isinstance(raw, Sequence) and not isinstance(raw, (str, bytes)):
        programs = [p for p in raw if p is not None]
        if len(programs) != len(raw):
            notes.append("cost_analysis() list contained None entries; they were skipped")
    else:
        raise TypeError(
            f"cost_analysis() returned {type(raw).__name__}; expected a dict, a list of dicts or None"
        )
    totals = {k: 0.0 for k in _COST_KEYS}
    for index, program in enumerate(programs):
        for key in _COST_KEYS:
            if key not in program:  # XLA omits a kind it found none of
                continue
            value = float(program[key])
            if value < 0:
                notes.append(
                    f"cost_analysis() program {index} reported {key!r} = {value:g} (a custom call XLA "
                    "cannot cost); dropped, the figure is a lower bound"
                )
                continue
            totals[key] += value
    return totals, notes


def _raw_flops(raw: Any) -> float:
    """XLA's flops figure as reported, negative entries included (for the notes), 0 when absent."""
    programs = [raw] if isinstance(raw, Mapping) else [p for p in (raw or []) if p is not None]
    return float(sum(float(p.get("flops", 0.0)) for p in programs))


def _backend(compiled: Any) -> str:
    """The platform the program was compiled for (cpu, gpu/cuda, tpu), not merely the default backend."""
    devices = getattr(compiled, "input_shardings", None)
    for sharding in jax.tree_util.tree_leaves(devices):
        for device in getattr(sharding, "device_set", ()):
            return device.platform
    return jax.default_backend()


def _num_devices(compiled: Any, hlo_text: str) -> int:
    partitions = re.search(r"num_partitions=(\d+)", hlo_text)
    replicas = re.search(r"replica_count=(\d+)", hlo_text)
    from_text = (int(partitions.group(1)) if partitions else 1) * (int(replicas.group(1)) if replicas else 1)
    shardings = jax.tree_util.tree_leaves(compiled.input_shardings)
    from_shardings = max((len(s.device_set) for s in shardings), default=1)
    return max(from_text, from_shardings)


def _peak_memory(compiled: Any, notes: list[str]) -> int | None:
    try:
        stats = compiled.memory_analysis()
    except (NotImplementedError, RuntimeError) as error:  # some backends/plugins do not implement it
        notes.append(f"memory_analysis() failed ({error}); peak_memory_bytes is None")
        return None
    if stats is None:
        notes.append("memory_analysis() returned None; peak_memory_bytes is None")
        return None
    peak = getattr(stats, "peak_memory_in_bytes", 0)
    if peak:
        return int(peak)
    return int(
        stats.argument_size_in_bytes
        + stats.output_size_in_bytes
        + stats.temp_size_in_bytes
        - stats.alias_size_in_bytes
    )


def _own_count_notes(counts: LoopCounts, xla_flops: float) -> list[str]:
    notes = []
    if counts.library_calls:
        kinds = sorted({call.kind for call in counts.library_calls})
        notes.append(
            f"{len(counts.library_calls)} library custom call(s) ({', '.join(kinds)}) counted from their shapes: "
            f"{counts.library_flops_scaled:.6g} FLOPs per device"
        )
        notes += sorted({f"{call.name} ({call.target}): {call.caveat}" for call in counts.library_calls if call.caveat})
    notes.append(
        "the program has custom calls, which XLA's cost analysis prices at -1 FLOP each and sums in: FLOPs are "
        f"flopmeter's own count of the compiled HLO (XLA reported {xla_flops:.6g}; bytes_accessed omits the "
        "custom calls' traffic)"
    )
    return notes


def cost_from_compiled(compiled: Any, *, compile_seconds: float, lowered_flops: float | None = None) -> Cost:
    """Build a `Cost` from a `jax.stages.Compiled` (or anything with its methods), fixing every known trap.

    A program without custom calls keeps XLA's figure plus the loop correction. A program with custom calls
    (cuBLAS GEMMs and cuDNN attention on GPU) is counted entirely by flopmeter: XLA adds -1 per custom call
    into its sum, so its figure can neither be used nor safely corrected, and combining the two would risk
    counting the same work twice.
    """
    raw = compiled.cost_analysis()
    figures, notes = normalise_cost_analysis(raw)
    hlo_text = compiled.as_text() or ""
    counts = count_hlo(hlo_text)
    correction = counts.flops_scaled - counts.flops_once
    for loop in counts.loops:
        if loop.trip_count is None:
            notes.append(
                f"while loop {loop.name} (body {loop.body}) has no known trip count: its body is counted "
                "once, so FLOPs are a lower bound"
            )
    if counts.loops and correction:
        notes.append(
            f"{len(counts.loops)} while loop(s) found; bodies scaled by their trip counts "
            "(bytes_accessed still counts each body once)"
        )
    if counts.custom_calls:
        notes.append(
            "custom calls flopmeter cannot cost (FLOPs inside them are missing): " + ", ".join(counts.custom_calls)
        )
    if counts.library_calls or counts.custom_calls:
        notes += _own_count_notes(counts, _raw_flops(raw))
        per_device = counts.flops_scaled
        transcendentals = counts.transcendentals_scaled
    else:
        flops_xla, trans_xla = figures["flops"], figures["transcendentals"]
        if flops_xla == 0 and counts.flops_once > 0:
            notes.append("XLA reported no FLOPs; using flopmeter's own count of the compiled HLO instead")
            flops_xla, trans_xla = counts.flops_once, counts.transcendentals_once
        per_device = flops_xla + correction
        transcendentals = trans_xla + counts.transcendentals_scaled - counts.transcendentals_once
    num_devices = _num_devices(compiled, hlo_text)
    peak_memory = _peak_memory(compiled, notes)
    return Cost(
        flops=per_device * num_devices,
        flops_per_device=per_device,
        macs=per_device * num_devices / 2.0,
        transcendentals=transcendentals * num_devices,
        bytes_accessed=figures["bytes accessed"] * num_devices,
        peak_memory_bytes=peak_memory,
        num_devices=num_devices,
        compile_seconds=compile_seconds,
        backend=_backend(compiled),
        jax_version=jax.__version__,
        loop_correction_flops=correction,
        lowered_flops=lowered_flops,
        library_flops=counts.library_flops_scaled,
        notes=tuple(notes),
    )


def lower_abstract(fn: Callable, *args: Any, **kwargs: Any) -> jax.stages.Lowered:
    """`jax.jit(fn).lower(...)` for arguments as `measure` takes them (arrays, `jax.ShapeDtypeStruct`s with
    optional shardings, pytrees with static leaves); compile it and pass it to `cost_from_compiled` to measure
    the very program you then run or inspect (`compiled.as_text()`)."""
    if not callable(fn):
        raise TypeError(f"fn={fn!r} is not callable; expected the function to measure")
    flat_fn, specs = partition_call(fn, args, kwargs)
    return jax.jit(flat_fn).lower(specs)


def measure(fn: Callable, *args: Any, **kwargs: Any) -> Cost:
    """Compile `fn(*args, **kwargs)` without running it and return its `Cost`.

    Arguments may be arrays, `jax.ShapeDtypeStruct`s (with a `sharding` for SPMD programs, or to compile for a
    given device) or pytrees mixing them with static leaves such as Equinox modules and Python scalars; only
    array-like leaves are traced. Measure a whole training step that *returns* the new parameters and
    optimizer state: if only the loss is returned, XLA removes the backward pass and the update as dead code.

    Example:
        >>> cost = flopmeter.measure(jnp.matmul, jax.ShapeDtypeStruct((64, 32), jnp.float32),
        ...                          jax.ShapeDtypeStruct((32, 16), jnp.float32))
        >>> cost.flops  # 2 * 64 * 32 * 16
        65536.0
    """
    lowered = lower_abstract(fn, *args, **kwargs)
    lowered_figures, _ = normalise_cost_analysis(lowered.cost_analysis())
    start = time.perf_counter()
    compiled = lowered.compile()
    compile_seconds = time.perf_counter() - start
    return cost_from_compiled(
        compiled, compile_seconds=compile_seconds, lowered_flops=lowered_figures["flops"]
    )


# Custom calls that annotate the lowered program for the partitioner; they compute nothing.
_ANNOTATIONS = ("Sharding", "SPMDFullToShardShape", "SPMDShardToFullShape")


def _lowered_devices(text: str) -> int:
    """Devices of a lowered program: the largest device list of its shardings (``<=[N]``) or Shardy mesh."""
    sizes = [int(n) for n in re.findall(r"<=\[(\d+)\]", text)]
    for mesh in re.findall(r"#sdy\.mesh<\[([^\]]*)\]>", text):
        sizes.append(math.prod(int(n) for n in re.findall(r"=(\d+)", mesh)))
    return max(sizes, default=1)


def cost_from_lowered(lowered: jax.stages.Lowered, *, lower_seconds: float, hlo_text: str | None = None) -> Cost:
    """A `Cost` counted on the lowered program (``lowered.as_text(dialect="hlo")``, or ``hlo_text`` when the
    caller has it), before XLA's optimisation passes and backend code generation, which are most of the time a
    paper-scale step takes to `measure` on a CPU.

    The count is flopmeter's own (`count_hlo`: XLA's conventions instruction by instruction, loops scaled by
    the trip counts of JAX's counted loops, cuBLAS/cuDNN calls from their shapes). It is the whole program,
    before SPMD partitioning (`flops_per_device` = `flops` / devices). It differs from `measure`'s count of the
    compiled program only in element-wise work that XLA's passes rewrite (fusion recomputes cheap producers in
    each consumer, reductions are split, element-wise ops simplified): within 0.1% on every Figure 3 step
    (docs/benchmarks.md), a few % on toy models where element-wise work is a large share; dead code the
    compiler would remove is counted. ``peak_memory_bytes`` and ``bytes_accessed`` are not known here (None
    and 0); ``compile_seconds`` is ``lower_seconds``; ``num_devices`` is the largest device list of the
    program's shardings.
    """
    text = lowered.as_text(dialect="hlo") if hlo_text is None else hlo_text
    counts = count_hlo(text)
    notes = ["counted on the lowered HLO (before optimisation passes and code generation; flopmeter's count)"]
    notes += [f"while loop {loop.name} (body {loop.body}) has no known trip count: its body is counted once, so "
              "FLOPs are a lower bound" for loop in counts.loops if loop.trip_count is None]
    unknown = [call for call in counts.custom_calls if not call.endswith(tuple(f"({a})" for a in _ANNOTATIONS))]
    if unknown:
        notes.append("custom calls flopmeter cannot cost (FLOPs inside them are missing): " + ", ".join(unknown))
    devices = _lowered_devices(text)
    if devices > 1:
        notes.append(f"flops_per_device is flops / {devices}: the lowered program is not yet partitioned")
    return Cost(
        flops=counts.flops_scaled,
        flops_per_device=counts.flops_scaled / devices,
        macs=counts.flops_scaled / 2.0,
        transcendentals=counts.transcendentals_scaled,
        bytes_accessed=0.0,
        peak_memory_bytes=None,
        num_devices=devices,
        compile_seconds=lower_seconds,
        backend=jax.default_backend(),
        jax_version=jax.__version__,
        loop_correction_flops=counts.flops_scaled - counts.flops_once,
        lowered_flops=counts.flops_once,
        library_flops=counts.library_flops_scaled,
        notes=tuple(notes),
    )


def measure_lowered(fn: Callable, *args: Any, **kwargs: Any) -> Cost:
    """`measure`'s count without compiling: `cost_from_lowered` of ``fn(*args, **kwargs)`` lowered on the same
    arguments (arrays, `jax.ShapeDtypeStruct`s, pytrees with static leaves). Seconds where `measure` takes
    tens of seconds for a paper-scale training step on a CPU; see `cost_from_lowered` for what it counts."""
    start = time.perf_counter()
    lowered = lower_abstract(fn, *args, **kwargs)
    return cost_from_lowered(lowered, lower_seconds=time.perf_counter() - start)

"""The two compiled programs of a run: the sharded initialisation and the training step, each compiled once.

- `abstract_state(init, *args)`: the state's shapes (``eqx.filter_eval_shape``; nothing allocated).
- `init_sharded(init, args, abstract, shardings)`: ``jax.jit(init, out_shardings=shardings)``, so every device
  builds only its shard (FSDP never materialises the whole model on one device).
- `compile_step(step, state, batch, ...)`: ``jax.jit(step, donate, in/out shardings).lower(...).compile()``; the
  FLOPs of that very executable are read with ``flopmeter.cost_from_compiled`` (no second, abstract compile).
  ``args`` are arrays the step reads as data, ``step(state, batch, *args)`` (e.g. a schedule's length): not
  constants of the program, so runs that differ only in them lower to the same program, which JAX's persistent
  cache (`runloop.enable_compilation_cache`) then serves without compiling; `CompiledStep.source` says which
  happened.

The step the caller writes is pure: ``step(state, batch) -> (state, metrics)`` with scalar metrics including
``"loss"`` (and optionally ``"finite"``: 0.0 when the step saw a NaN/inf elsewhere, e.g. in its gradients). The
engine wraps it: ``metrics["finite"]`` becomes ``isfinite(loss) & finite``, and with ``skip_nonfinite`` a
non-finite step returns its input state unchanged (the update is dropped, the state's step does not advance).
Arrays of the state are donated: the state passed in must not be used after a call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import equinox as eqx
import flopmeter
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from .compilation_cache import persistent_cache_hits
from .sharding import batch_sharding, is_array_like, replicated

__all__ = ["CompiledStep", "abstract_state", "compile_step", "init_sharded"]

StepFn = Callable[..., tuple[Any, dict[str, jax.Array]]]
"""``step(state, batch, *args) -> (state, metrics)``."""


def abstract_state(init: Callable[..., Any], *args: Any) -> Any:
    """``init(*args)``'s result with ``jax.ShapeDtypeStruct`` leaves (static structure kept), not allocated."""
    return eqx.filter_eval_shape(init, *args)


def init_sharded(init: Callable[..., Any], args: tuple[Any, ...], abstract: Any, shardings: Any) -> Any:
    """``init(*args)`` computed by one jitted program whose outputs are laid out by ``shardings`` (a pytree like
    ``eqx.filter(abstract, is_array_like)``); ``args`` may hold arrays (passed in, not baked in as constants)."""
    _, static = eqx.partition(abstract, is_array_like)
    arg_arrays, arg_static = eqx.partition(args, eqx.is_array)

    def runloop_init(arrays: Any) -> Any:
        return eqx.partition(init(*eqx.combine(arrays, arg_static)), eqx.is_array)[0]

    dynamic = jax.jit(runloop_init, out_shardings=shardings)(arg_arrays)
    return eqx.combine(dynamic, static)


def _select(ok: jax.Array, new: Any, old: Any) -> Any:
    return jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)


def _guarded(step: StepFn, static: Any, skip_nonfinite: bool) -> Callable[[Any, Any, Any], tuple[Any, Any]]:
    def runloop_step(dynamic: Any, batch: dict[str, jax.Array], args: tuple[Any, ...]
                     ) -> tuple[Any, dict[str, jax.Array]]:
        new_state, metrics = step(eqx.combine(dynamic, static), batch, *args)
        new_dynamic = eqx.filter(new_state, eqx.is_array)
        if jax.tree.structure(new_dynamic) != jax.tree.structure(dynamic):
            raise TypeError("the step returned a state of another structure than it was given; a step must "
                            "return a state of the same pytree structure (same modules, same fields)")
        if not isinstance(metrics, dict) or "loss" not in metrics:
            raise TypeError(f"the step's metrics are {type(metrics).__name__} {metrics!r}; expected a dict of "
                            "scalars with a 'loss' entry")
        for name, value in metrics.items():
            if jnp.shape(value) != ():
                raise TypeError(f"metric {name!r} has shape {jnp.shape(value)}; expected a scalar")
        metrics = {name: jnp.asarray(value).astype(jnp.float32) for name, value in metrics.items()}
        ok = jnp.isfinite(metrics["loss"]) & (metrics.get("finite", jnp.float32(1.0)) > 0.0)
        if skip_nonfinite:
            new_dynamic = _select(ok, new_dynamic, dynamic)
        return new_dynamic, {**metrics, "finite": ok.astype(jnp.float32)}

    return runloop_step


def _put_replicated(args: tuple[Any, ...], mesh: Mesh) -> tuple[Any, ...]:
    """Array leaves of ``args`` (the same values in every process) as global arrays whole on every device."""
    sharding = replicated(mesh)

    def put(x: Any) -> Any:
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(put, args)


class CompiledStep:
    """The step's one executable: call it as ``state, metrics = compiled(state, device_batch)`` (the step's
    ``args`` are passed on every call). ``cost`` is the executable's `flopmeter.Cost` (None when not measured);
    ``compile_seconds`` the lowering + compile (or cache read) time; ``source`` is ``"compiled"``, or
    ``"cache"`` when JAX's persistent compilation cache held the program (compiled by an earlier run)."""

    def __init__(self, executable: Any, static: Any, cost: flopmeter.Cost | None, compile_seconds: float,
                 args: tuple[Any, ...] = (), source: str = "compiled") -> None:
        self._executable, self._static, self._args = executable, static, args
        self.cost, self.compile_seconds, self.source = cost, compile_seconds, source

    def __call__(self, state: Any, batch: dict[str, jax.Array]) -> tuple[Any, dict[str, jax.Array]]:
        dynamic, new_metrics = self._executable(eqx.filter(state, eqx.is_array), batch, self._args)
        return eqx.combine(dynamic, self._static), new_metrics

    def describe(self) -> str:
        """One line for a run's log: whether the program was compiled or read from the cache, and how long."""
        if self.source == "cache":
            return f"step program read from the compilation cache in {self.compile_seconds:.1f} s"
        return f"step program compiled in {self.compile_seconds:.1f} s"


def compile_step(step: StepFn, state: Any, batch: dict[str, jax.Array], *, mesh: Mesh, state_shardings: Any,
                 skip_nonfinite: bool, measure_flops: bool, args: tuple[Any, ...] = ()) -> CompiledStep:
    """Lowers and compiles the guarded ``step`` once for ``state``, ``batch`` (global arrays, batch axis sharded
    over ``mesh``) and ``args`` (arrays, replicated; passed as ``step(state, batch, *args)``), donating the state;
    measures its FLOPs when ``measure_flops``."""
    dynamic, static = eqx.partition(state, eqx.is_array)
    args = _put_replicated(tuple(args), mesh)
    jitted = jax.jit(_guarded(step, static, skip_nonfinite), donate_argnums=0,
                     in_shardings=(state_shardings, batch_sharding(mesh), replicated(mesh)),
                     out_shardings=(state_shardings, replicated(mesh)))
    hits = persistent_cache_hits()
    start = time.perf_counter()
    executable = jitted.lower(dynamic, batch, args).compile()
    seconds = time.perf_counter() - start
    source = "cache" if persistent_cache_hits() > hits else "compiled"
    cost = flopmeter.cost_from_compiled(executable, compile_seconds=seconds) if measure_flops else None
    return CompiledStep(executable, static, cost, seconds, args, source)

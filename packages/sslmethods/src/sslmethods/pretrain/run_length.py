"""The run's length as data: what a compiled pre-training step reads instead of Python constants.

Every schedule of a run is fitted to its length: the learning rate's warm-up and cosine, the weight-decay cosine
(`optim`), BYOL's target EMA rate, DINO's teacher momentum, teacher-temperature warm-up and frozen last layer
(the methods' ``total_steps``). Given to the step as int32 scalars (`step.make_run_step_fn`), these lengths are
arguments of the compiled program, not constants inside it: runs that differ only in length (a sweep's budgets of
one method, backbone, batch and data shapes) compile one program, and with the persistent compilation cache
(`runloop.enable_compilation_cache`) a second budget, or the same run again, compiles nothing::

    length = run_length(optim_cfg, total_steps=1000)       # RunLength(total_steps=1000, warmup_steps=50)
    state, metrics = step(state, batch, length)            # step = make_run_step_fn(method, optim_cfg)

The integer lengths are worked out here, on the host, exactly as with Python ints (``OptimConfig.warmup_for``
rounds a warm-up fraction in double precision); the schedules then give the same float32 values from the arrays
as from the ints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Int

if TYPE_CHECKING:
    from .optim import OptimConfig

__all__ = ["RunLength", "run_length"]


class RunLength(eqx.Module):
    """``total_steps``: the run's optimizer steps; ``warmup_steps``: the learning rate's warm-up
    (``OptimConfig.warmup_for(total_steps)``). Both int32 scalars."""

    total_steps: Int[Array, ""]
    warmup_steps: Int[Array, ""]


def run_length(optim_cfg: OptimConfig, total_steps: int) -> RunLength:
    """The lengths of a run of ``total_steps`` optimizer steps with ``optim_cfg``, as int32 scalars."""
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or not 1 <= total_steps < 2**24:
        # 2**24: float32 holds every step count exactly below it, as the schedules' divisions need
        raise ValueError(f"total_steps={total_steps!r}; expected an integer in [1, 2**24)")
    return RunLength(jnp.asarray(total_steps, jnp.int32), jnp.asarray(optim_cfg.warmup_for(total_steps), jnp.int32))

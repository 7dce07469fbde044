"""Step schedules of the study (``optax.Schedule`` style: pure functions ``step -> float32 scalar``).

Each factory validates its arguments once and returns a closure that is safe under ``jit`` (``step`` may be a
Python int or a traced integer array, e.g. the optimizer's step counter) and constant after its last step,
so a run that is extended or resumed never reads a schedule outside its range.

Lengths (``total_steps``, ``warmup_steps``) are Python ints or int32 scalar arrays: inside a compiled
pre-training step they are the run's length passed in as data (`sslmethods.pretrain.run_length`), so that runs
which differ only in length share one program. An array length gives the same float32 values as the same Python int; it
is checked where it is made (`run_length.run_length`), not here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int

__all__ = [
    "byol_tau",
    "cosine_interpolation",
    "dino_teacher_momentum",
    "dino_teacher_temperature",
    "dino_weight_decay",
    "divide",
    "warmup_cosine",
]

Step = int | Int[Array, ""]
Length = int | Int[Array, ""]
"""A number of steps: a Python int, or an int32 scalar array (the run's length as data inside a compiled step)."""


def _is_length_array(value: object) -> bool:
    """Whether ``value`` is a length given as data: an integer scalar array (possibly traced)."""
    return isinstance(value, jax.Array | np.ndarray) and np.shape(value) == () and \
        jnp.issubdtype(value.dtype, jnp.integer)


def _check_steps(name: str, value: Length, *, allow_zero: bool = False) -> None:
    if _is_length_array(value):
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        expected = "a non-negative int" if allow_zero else "a positive int"
        raise ValueError(f"{name}={value!r}: expected {expected} number of steps")


def divide(x: Float[Array, "*s"], length: Length) -> Float[Array, "*s"]:
    """``x / length`` in float32, computed as XLA computes a division by a constant: ``x`` times the float32
    reciprocal of ``length``. So a length given as data (an array, traced) gives the very values a Python int
    gave when it was a constant of the compiled program (XLA rewrites ``x / c`` to ``x * (1 / c)``; a true
    division would differ in the last bit)."""
    return x * (1.0 / jnp.asarray(length).astype(jnp.float32))


def _fraction(step: Step, start: int, length: Length) -> Float[Array, ""]:
    """(step - start) / length clipped to [0, 1], in float32."""
    s = jnp.asarray(step).astype(jnp.float32)
    return jnp.clip(divide(s - float(start), length), 0.0, 1.0)


def cosine_interpolation(start_value: float, end_value: float, total_steps: Length) -> optax.Schedule:
    """``end + (start - end) * (1 + cos(pi * k / K)) / 2`` for ``k <= K``, then ``end``.

    The per-step form of DINO's ``utils.cosine_scheduler`` (without warm-up), which the teacher momentum and
    weight decay schedules use.
    """
    _check_steps("total_steps", total_steps)

    def schedule(step: Step) -> Float[Array, ""]:
        cos = jnp.cos(jnp.pi * _fraction(step, 0, total_steps))
        return jnp.float32(end_value) + jnp.float32(start_value - end_value) * (1.0 + cos) / 2.0

    return schedule


def warmup_cosine(
    peak_value: float,
    total_steps: Length,
    *,
    warmup_steps: Length = 0,
    init_value: float = 0.0,
    end_value: float = 0.0,
) -> optax.Schedule:
    """Linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps``, then cosine decay to
    ``end_value`` at ``total_steps`` (the run length the schedule is fitted to), constant afterwards; with
    ``warmup_steps == total_steps`` the warm-up takes the whole run (the peak is reached at its last step).

    The learning-rate schedule of all six methods (study A.3: e.g. CLIP 10K warm-up from 1e-7, BYOL 5% of the
    steps, DINO 12K warm-up to a minimum of 2e-6; `optim.learning_rate_schedule`). The same float32 values as
    ``optax.warmup_cosine_decay_schedule(init, peak, warmup_steps, total_steps, end)`` (and, for a warm-up of
    the whole run, ``optax.linear_schedule(init, peak, max(warmup_steps, 1))``): the same operations in the same
    order, with the lengths allowed to be data.
    """
    _check_steps("total_steps", total_steps)
    _check_steps("warmup_steps", warmup_steps, allow_zero=True)
    if isinstance(warmup_steps, int) and isinstance(total_steps, int) and warmup_steps > total_steps:
        raise ValueError(f"warmup_steps={warmup_steps}: expected at most total_steps={total_steps}")
    # optax's pieces: linear_schedule(init, peak, warmup) joined at the warm-up's end with
    # cosine_decay_schedule(peak, total - warmup, alpha=end / peak).
    ramp = jnp.maximum(jnp.asarray(warmup_steps), 1)
    decay_steps = jnp.asarray(total_steps - warmup_steps)
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value

    def linear(count: Int[Array, ""]) -> Float[Array, ""]:
        frac = 1 - divide(jnp.clip(count, 0, ramp).astype(jnp.float32), ramp)
        return (init_value - peak_value) * frac + peak_value

    def cosine(count: Int[Array, ""]) -> Float[Array, ""]:
        count = jnp.minimum(count.astype(jnp.float32), decay_steps.astype(jnp.float32))
        cosine_decay = 0.5 * (1 + jnp.cos(divide(jnp.pi * count, decay_steps)))
        return peak_value * ((1 - alpha) * cosine_decay + alpha)

    def schedule(step: Step) -> Float[Array, ""]:
        s = jnp.asarray(step)
        warm = linear(s)
        joined = jnp.where(s < warmup_steps, warm, cosine(s - warmup_steps))
        # a warm-up of the whole run has no cosine (its decay length is 0): the ramp alone
        return jnp.where(jnp.asarray(warmup_steps) == jnp.asarray(total_steps), warm, joined).astype(jnp.float32)

    return schedule


def byol_tau(base_tau: float, total_steps: Length) -> optax.Schedule:
    """BYOL's target EMA rate ``1 - (1 - base_tau) * (cos(pi k / K) + 1) / 2``: ``base_tau`` at 0, 1 at K.

    deepmind-research ``byol/utils/schedules.py::target_ema``. The study uses base 0.99 (JFT, ALIGN), 0.996
    (ImageNet) and 0.97 (COCO).
    """
    if not 0.0 <= base_tau <= 1.0:
        raise ValueError(f"base_tau={base_tau}: expected an EMA rate in [0, 1]")
    return cosine_interpolation(base_tau, 1.0, total_steps)


def dino_teacher_momentum(total_steps: Length, *, base: float = 0.996, final: float = 1.0) -> optax.Schedule:
    """DINO's teacher EMA momentum, cosine from ``base`` (0.996) to ``final`` (1) over the run."""
    if not 0.0 <= base <= 1.0 or not 0.0 <= final <= 1.0:
        raise ValueError(f"base={base}, final={final}: expected EMA momenta in [0, 1]")
    return cosine_interpolation(base, final, total_steps)


def dino_weight_decay(total_steps: Length, *, base: float = 0.04, final: float = 0.4) -> optax.Schedule:
    """DINO's weight decay, cosine from ``base`` (0.04) to ``final`` (0.4) over the run."""
    return cosine_interpolation(base, final, total_steps)


def dino_teacher_temperature(warmup_steps: Length, *, start: float = 0.04, end: float = 0.07) -> optax.Schedule:
    """DINO's teacher temperature: linear warm-up from ``start`` (0.04) to ``end`` (0.07), then constant.

    DINO steps this per epoch (``np.linspace(0.04, 0.07, warmup_epochs)``, 30 epochs by default); here it
    moves every step, reaching ``end`` at ``warmup_steps`` (``warmup_steps=0`` gives ``end`` throughout).
    """
    _check_steps("warmup_steps", warmup_steps, allow_zero=True)
    if not (start > 0 and end > 0):
        raise ValueError(f"start={start}, end={end}: expected positive temperatures")

    def schedule(step: Step) -> Float[Array, ""]:
        if isinstance(warmup_steps, int) and warmup_steps == 0:
            return jnp.full((), end, jnp.float32)
        warm = jnp.float32(start) + jnp.float32(end - start) * _fraction(step, 0, warmup_steps)
        if isinstance(warmup_steps, int):
            return warm
        return jnp.where(warmup_steps == 0, jnp.float32(end), warm)  # as data, 0 is a value like any other

    return schedule

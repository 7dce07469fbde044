"""Step schedules of the study (``optax.Schedule`` style: pure functions ``step -> float32 scalar``).

Each factory validates its arguments once and returns a closure that is safe under ``jit`` (``step`` may be a
Python int or a traced integer array, e.g. the optimizer's step counter) and constant after its last step,
so a run that is extended or resumed never reads a schedule outside its range.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int

__all__ = [
    "byol_tau",
    "cosine_interpolation",
    "dino_teacher_momentum",
    "dino_teacher_temperature",
    "dino_weight_decay",
    "warmup_cosine",
]

Step = int | Int[Array, ""]


def _check_steps(name: str, value: int, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        expected = "a non-negative int" if allow_zero else "a positive int"
        raise ValueError(f"{name}={value!r}: expected {expected} number of steps")


def _fraction(step: Step, start: int, length: int) -> Float[Array, ""]:
    """(step - start) / length clipped to [0, 1], in float32."""
    s = jnp.asarray(step).astype(jnp.float32)
    return jnp.clip((s - float(start)) / float(length), 0.0, 1.0)


def cosine_interpolation(start_value: float, end_value: float, total_steps: int) -> optax.Schedule:
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
    total_steps: int,
    *,
    warmup_steps: int = 0,
    init_value: float = 0.0,
    end_value: float = 0.0,
) -> optax.Schedule:
    """Linear warm-up from ``init_value`` to ``peak_value`` over ``warmup_steps``, then cosine decay to
    ``end_value`` at ``total_steps`` (the run length the schedule is fitted to), constant afterwards.

    The learning-rate schedule of all six methods (study A.3: e.g. CLIP 10K warm-up from 1e-7, BYOL 5% of the
    steps, DINO 12K warm-up to a minimum of 2e-6). Same values as ``optax.warmup_cosine_decay_schedule(init,
    peak, warmup_steps, total_steps, end)``.
    """
    _check_steps("total_steps", total_steps)
    _check_steps("warmup_steps", warmup_steps, allow_zero=True)
    if warmup_steps >= total_steps:
        raise ValueError(f"warmup_steps={warmup_steps}: expected fewer than total_steps={total_steps}")
    decay = cosine_interpolation(peak_value, end_value, total_steps - warmup_steps)

    def schedule(step: Step) -> Float[Array, ""]:
        s = jnp.asarray(step)
        if warmup_steps == 0:
            return decay(s)
        warm = jnp.float32(init_value) + jnp.float32(peak_value - init_value) * _fraction(s, 0, warmup_steps)
        return jnp.where(s < warmup_steps, warm, decay(s - warmup_steps))

    return schedule


def byol_tau(base_tau: float, total_steps: int) -> optax.Schedule:
    """BYOL's target EMA rate ``1 - (1 - base_tau) * (cos(pi k / K) + 1) / 2``: ``base_tau`` at 0, 1 at K.

    deepmind-research ``byol/utils/schedules.py::target_ema``. The study uses base 0.99 (JFT, ALIGN), 0.996
    (ImageNet) and 0.97 (COCO).
    """
    if not 0.0 <= base_tau <= 1.0:
        raise ValueError(f"base_tau={base_tau}: expected an EMA rate in [0, 1]")
    return cosine_interpolation(base_tau, 1.0, total_steps)


def dino_teacher_momentum(total_steps: int, *, base: float = 0.996, final: float = 1.0) -> optax.Schedule:
    """DINO's teacher EMA momentum, cosine from ``base`` (0.996) to ``final`` (1) over the run."""
    if not 0.0 <= base <= 1.0 or not 0.0 <= final <= 1.0:
        raise ValueError(f"base={base}, final={final}: expected EMA momenta in [0, 1]")
    return cosine_interpolation(base, final, total_steps)


def dino_weight_decay(total_steps: int, *, base: float = 0.04, final: float = 0.4) -> optax.Schedule:
    """DINO's weight decay, cosine from ``base`` (0.04) to ``final`` (0.4) over the run."""
    return cosine_interpolation(base, final, total_steps)


def dino_teacher_temperature(warmup_steps: int, *, start: float = 0.04, end: float = 0.07) -> optax.Schedule:
    """DINO's teacher temperature: linear warm-up from ``start`` (0.04) to ``end`` (0.07), then constant.

    DINO steps this per epoch (``np.linspace(0.04, 0.07, warmup_epochs)``, 30 epochs by default); here it
    moves every step, reaching ``end`` at ``warmup_steps`` (``warmup_steps=0`` gives ``end`` throughout).
    """
    _check_steps("warmup_steps", warmup_steps, allow_zero=True)
    if not (start > 0 and end > 0):
        raise ValueError(f"start={start}, end={end}: expected positive temperatures")

    def schedule(step: Step) -> Float[Array, ""]:
        if warmup_steps == 0:
            return jnp.full((), end, jnp.float32)
        return jnp.float32(start) + jnp.float32(end - start) * _fraction(step, 0, warmup_steps)

    return schedule

"""Exponential moving averages of non-trainable state: EMA teachers (BYOL, DINO) and DINO's centre."""

from __future__ import annotations

from typing import TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["dino_center_update", "ema_update"]

T = TypeVar("T")


def _check_rate(name: str, value: float | Float[Array, ""]) -> None:
    if isinstance(value, (int, float)) and not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value!r}: expected an EMA rate in [0, 1]")


def ema_update(teacher: T, student: T, tau: float | Float[Array, ""]) -> T:
    """``tau * teacher + (1 - tau) * student`` on every floating-point array leaf, computed in float32.

    ``teacher`` and ``student`` must have the same pytree structure (e.g. two copies of one Equinox module);
    non-floating leaves (integer buffers, static fields) are taken from ``teacher``. The result is cast back
    to each teacher leaf's dtype and wrapped in a stop-gradient, so no gradient can flow into or through the
    teacher. ``tau`` is BYOL's target rate / DINO's teacher momentum (1 keeps the teacher, 0 copies the
    student).
    """
    _check_rate("tau", tau)
    t_leaves, t_def = jax.tree.flatten(teacher)
    s_leaves, s_def = jax.tree.flatten(student)
    if t_def != s_def:
        raise ValueError(
            f"teacher and student have different pytree structures:\n  teacher: {t_def}\n  student: {s_def}"
        )
    rate = jnp.asarray(tau, jnp.float32)

    def update(t, s):
        if not eqx.is_inexact_array(t):
            return t
        if t.shape != s.shape:
            raise ValueError(f"teacher leaf shape {t.shape} != student leaf shape {s.shape}")
        new = rate * t.astype(jnp.float32) + (1.0 - rate) * s.astype(jnp.float32)
        return jax.lax.stop_gradient(new.astype(t.dtype))

    return jax.tree.unflatten(t_def, [update(t, s) for t, s in zip(t_leaves, s_leaves, strict=True)])


def dino_center_update(
    center: Float[Array, " k"],
    teacher_output: Float[Array, "*n k"],
    *,
    momentum: float | Float[Array, ""] = 0.9,
) -> Float[Array, " k"]:
    """DINO's centre: ``momentum * center + (1 - momentum) * mean(teacher_output)`` (centre EMA 0.9).

    facebookresearch/dino ``DINOLoss.update_center``: the mean runs over every teacher output of the *global*
    batch (both global crops, all devices: inside one ``jit`` over sharded arrays ``jnp.mean`` is global).
    ``teacher_output`` is the raw head output before centring, any leading shape (e.g. ``[g b k]``).
    """
    _check_rate("momentum", momentum)
    if teacher_output.ndim < 2 or teacher_output.shape[-1] != center.shape[0]:
        raise ValueError(
            f"teacher_output.shape={teacher_output.shape}: expected [..., {center.shape[0]}] (batch first)"
        )
    t = jax.lax.stop_gradient(teacher_output).astype(jnp.float32)
    batch_mean = jnp.mean(t.reshape(-1, t.shape[-1]), axis=0)
    m = jnp.asarray(momentum, jnp.float32)
    return (m * center.astype(jnp.float32) + (1.0 - m) * batch_mean).astype(center.dtype)

"""The study's fine-tuning optimizer: clip -> Adam -> constant decoupled weight decay -> warmup + poly schedule."""

from __future__ import annotations

from typing import Any

import optax
from runloop import scale_by_tree, standard_promotion

__all__ = ["warmup_poly_schedule", "finetune_optimizer"]


def warmup_poly_schedule(
    peak_lr: float,
    total_steps: int,
    warmup_steps: int,
    *,
    warmup_start_factor: float = 1e-6,
    end_lr: float = 0.0,
    power: float = 1.0,
) -> optax.Schedule:
    """Linear warmup then polynomial decay, as mmseg 1.x's ``LinearLR(start_factor) + PolyLR(begin=warmup)``.

    Closed form at step ``t`` (``W = warmup_steps``, ``T = total_steps``, ``f = warmup_start_factor``)::

        t <  W:      peak_lr * (f + (1 - f) * t / W)
        W <= t < T:  (peak_lr - end_lr) * (1 - (t - W) / (T - W)) ** power + end_lr
        t >= T:      end_lr

    The study: W = 1500, power 1.0, end_lr 0 (mmseg's BEiT/MAE ADE20K configs; ``min_lr`` is ``end_lr``).

    Example:
        >>> s = warmup_poly_schedule(1e-4, total_steps=100, warmup_steps=10)
        >>> round(float(s(55)), 10)  # halfway through the decay
        5e-05
    """
    if not peak_lr > 0:
        raise ValueError(f"peak_lr={peak_lr!r}: expected > 0")
    if not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"total_steps={total_steps!r}: expected a positive int")
    if not isinstance(warmup_steps, int) or not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps={warmup_steps!r}: expected an int in [0, total_steps={total_steps})")
    if not 0.0 <= warmup_start_factor <= 1.0:
        raise ValueError(f"warmup_start_factor={warmup_start_factor!r}: expected a factor in [0, 1]")
    if not 0.0 <= end_lr <= peak_lr:
        raise ValueError(f"end_lr={end_lr!r}: expected in [0, peak_lr={peak_lr}]")
    if not power > 0:
        raise ValueError(f"power={power!r}: expected > 0")
    decay = optax.polynomial_schedule(peak_lr, end_lr, power, total_steps - warmup_steps)
    if warmup_steps == 0:
        return decay
    warmup = optax.linear_schedule(peak_lr * warmup_start_factor, peak_lr, warmup_steps)
    return optax.join_schedules([warmup, decay], [warmup_steps])


def finetune_optimizer(
    learning_rate: float | optax.Schedule,
    weight_decay: float,
    *,
    decay_mask: Any = None,
    lr_scale: Any = None,
    clip_norm: float = 1.0,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
) -> optax.GradientTransformation:
    """``clip_by_global_norm(clip_norm) -> scale_by_adam -> add_decayed_weights(mask) -> scale_by_learning_rate``.

    The weight decay is *decoupled* and constant (not scheduled): the update is
    ``-lr_t * (adam_direction + weight_decay * param)``, i.e. AdamW, which is what mmseg's fine-tuning configs for
    ViT encoders use. ``decay_mask`` is a pytree of bools with the structure of the trainable params (True = decay),
    e.g. `segtransfer.segmenter_weight_decay_mask(model)`; None decays every parameter. ``lr_scale`` is an optional
    pytree of floats of the same structure multiplying each leaf's final update (mmseg's ``paramwise_cfg`` ``lr_mult``,
    e.g. `segtransfer.segmenter_lr_scale(model, head=10.0)`); None = 1 everywhere. The step counter lives in the
    state of ``scale_by_learning_rate`` when ``learning_rate`` is a schedule (optax convention).
    """
    if weight_decay < 0:
        raise ValueError(f"weight_decay={weight_decay!r}: expected >= 0")
    if not clip_norm > 0:
        raise ValueError(f"clip_norm={clip_norm!r}: expected > 0")
    parts = [
        optax.clip_by_global_norm(clip_norm),
        standard_promotion(optax.scale_by_adam(b1=b1, b2=b2, eps=eps)),
        optax.add_decayed_weights(weight_decay, mask=decay_mask),
        optax.scale_by_learning_rate(learning_rate),
    ]
    if lr_scale is not None:
        parts.append(scale_by_tree(lr_scale))
    return optax.chain(*parts)


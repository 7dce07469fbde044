"""Matching predictions to ground truth by IoU, and balanced positive/negative sampling, in static shapes.

`match_boxes` is detectron2's ``Matcher``: each prediction (anchor or proposal) takes the ground-truth box it
overlaps most; IoU >= ``high`` is positive (1), < ``low`` negative (0), in between ignored (-1); with
``allow_low_quality`` every prediction whose IoU with some ground truth equals that ground truth's best IoU is
made positive too (so every object gets at least one anchor). `sample_balanced` is ``subsample_labels``: up to
``num_samples * positive_fraction`` random positives, then random negatives fill the rest, done with random
priorities and ``top_k`` under masks so the output has a fixed size.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

__all__ = ["match_boxes", "sample_balanced"]

POSITIVE, NEGATIVE, IGNORED = 1, 0, -1


def match_boxes(
    iou: Float[Array, "n m"],
    gt_valid: Bool[Array, " m"],
    *,
    low: float,
    high: float,
    allow_low_quality: bool,
) -> tuple[Int[Array, " n"], Int[Array, " n"]]:
    """``(matched [n] int32, labels [n] int32)`` for ``n`` predictions against ``m`` padded ground-truth boxes.

    ``matched[i]`` is the index of the valid ground truth with the largest IoU (0 when there is none: check the
    label). ``labels`` are 1 / 0 / -1 (positive / negative / ignored). With no valid ground truth every
    prediction is negative. Low-quality matches need an IoU > 0 (a ground truth that overlaps no prediction
    makes nothing positive; detectron2 would mark every zero-IoU prediction positive there).
    Examples: the RPN uses ``low=0.3, high=0.7, allow_low_quality=True``; the ROI heads ``low=high=0.5``,
    ``allow_low_quality=False``.
    """
    if not low <= high:
        raise ValueError(f"low={low!r}, high={high!r}: expected low <= high")
    masked = jnp.where(gt_valid[None, :], iou, -1.0)
    best = jnp.max(masked, axis=1)
    matched = jnp.argmax(masked, axis=1).astype(jnp.int32)
    labels = jnp.where(best >= high, POSITIVE, jnp.where(best < low, NEGATIVE, IGNORED)).astype(jnp.int32)
    if allow_low_quality:
        best_per_gt = jnp.max(masked, axis=0)
        is_best = (masked == best_per_gt[None, :]) & gt_valid[None, :] & (best_per_gt[None, :] > 0)
        labels = jnp.where(jnp.any(is_best, axis=1), POSITIVE, labels)
    return matched, labels


def _top_members(member: Bool[Array, " n"], priority: Float[Array, " n"], k: int):
    """Indices of up to ``k`` members with the largest priorities, and which of those slots are members."""
    k = min(k, member.shape[0])
    values, indices = jax.lax.top_k(jnp.where(member, priority, -1.0), k)
    return indices.astype(jnp.int32), values >= 0.0


def sample_balanced(
    labels: Int[Array, " n"],
    *,
    num_samples: int,
    positive_fraction: float,
    key: PRNGKeyArray,
) -> tuple[Int[Array, " s"], Bool[Array, " s"], Bool[Array, " s"]]:
    """Pick ``num_samples`` of the labelled predictions: ``(indices, is_positive, is_valid)``, each [num_samples].

    Positives (label 1) are a uniformly random subset of size ``min(#positives, int(num_samples *
    positive_fraction))``; negatives (label 0) a random subset of size ``min(#negatives, num_samples -
    #positives taken)``; ignored predictions (-1) are never picked. Picked entries come first (positives, then
    negatives); slots beyond them have ``is_valid = False``.
    """
    if not 0.0 <= positive_fraction <= 1.0:
        raise ValueError(f"positive_fraction={positive_fraction!r}: expected a fraction in [0, 1]")
    if num_samples < 1:
        raise ValueError(f"num_samples={num_samples!r}: expected a positive int")
    priority = jr.uniform(key, labels.shape)
    pos_idx, pos_ok = _top_members(labels == POSITIVE, priority, int(num_samples * positive_fraction))
    neg_idx, neg_ok = _top_members(labels == NEGATIVE, priority, num_samples)
    room = num_samples - jnp.sum(pos_ok)
    neg_ok = neg_ok & (jnp.arange(neg_idx.shape[0]) < room)
    indices = jnp.concatenate([pos_idx, neg_idx])
    ok = jnp.concatenate([pos_ok, neg_ok])
    positive = jnp.concatenate([pos_ok, jnp.zeros_like(neg_ok)])
    # Pack the picked entries to the front; at most num_samples are picked by construction.
    (slots,) = jnp.nonzero(ok, size=num_samples, fill_value=0)
    valid = jnp.arange(num_samples) < jnp.sum(ok)
    return indices[slots], positive[slots] & valid, valid

"""Greedy non-maximum suppression with static shapes: padded inputs, a fixed number of outputs.

Greedy NMS keeps box ``i`` (in descending score order) iff it is valid and no *kept* box before it overlaps it by
more than the threshold. That rule defines the kept set uniquely, and it is the fixed point of
``keep <- valid & ~any_j<i(keep_j & IoU_ji > t)``: after ``k`` rounds of this update the first ``k`` decisions are
final, and a round that changes nothing has reached the greedy answer. So a ``while_loop`` of whole-matrix
rounds (as many as the longest suppression chain, usually a handful) gives exactly greedy NMS with no per-box
serial loop. flopmeter counts that loop's body once (its trip count is data dependent; the body is comparisons on
an ``n x n`` boolean matrix, negligible next to the network).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from .boxes import pairwise_iou

__all__ = ["nms"]


def nms(
    boxes: Float[Array, "n 4"],
    scores: Float[Array, " n"],
    valid: Bool[Array, " n"],
    *,
    iou_threshold: float,
    max_output: int,
    classes: Int[Array, " n"] | None = None,
) -> tuple[Int[Array, " k"], Bool[Array, " k"]]:
    """Indices of the boxes greedy NMS keeps, best first, padded to ``max_output``.

    Returns ``(indices [max_output] int32, kept [max_output] bool)``: ``indices[i]`` is meaningful where
    ``kept[i]`` (padding points at an arbitrary input). Invalid inputs are never kept and never suppress.
    Ties in score keep the input order (a stable sort). With ``classes``, only boxes of the same class suppress
    each other (per-class NMS in one call, detectron2's ``batched_nms``). A box overlapping a kept box by
    exactly ``iou_threshold`` survives (suppression needs IoU > threshold), as in torchvision.

    Example::

        idx, kept = nms(boxes, scores, scores > 0.05, iou_threshold=0.5, max_output=100)
        best_boxes = boxes[idx]   # [100, 4]; rows where ~kept are padding
    """
    n = boxes.shape[0]
    if max_output < 1:
        raise ValueError(f"max_output={max_output!r}: expected a positive int")
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold={iou_threshold!r}: expected a value in [0, 1]")
    order = jnp.argsort(-jnp.where(valid, scores, -jnp.inf), stable=True)
    sorted_boxes, sorted_valid = boxes[order], valid[order]
    over = pairwise_iou(sorted_boxes, sorted_boxes) > iou_threshold
    if classes is not None:
        sorted_classes = classes[order]
        over = over & (sorted_classes[:, None] == sorted_classes[None, :])
    # suppressor[j, i]: box j (earlier in score order) would suppress box i if j is kept.
    index = jnp.arange(n)
    suppressor = over & (index[:, None] < index[None, :])

    def round_(state):
        keep, _, rounds = state
        new = sorted_valid & ~jnp.any(keep[:, None] & suppressor, axis=0)
        return new, jnp.any(new != keep), rounds + 1

    def not_done(state):
        _, changed, rounds = state
        return changed & (rounds < n)

    keep, _, _ = jax.lax.while_loop(not_done, round_, (sorted_valid, jnp.asarray(True), jnp.asarray(0)))
    (positions,) = jnp.nonzero(keep, size=max_output, fill_value=0)
    kept = jnp.arange(max_output) < jnp.sum(keep)
    return order[positions].astype(jnp.int32), kept

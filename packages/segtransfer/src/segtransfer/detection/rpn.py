"""Region proposal network: the shared head, proposal selection, and anchor targets (detectron2 ``RPN``).

Per image: the head scores every anchor (objectness logit) and regresses deltas (weights 1/1/1/1). Proposals are
the top ``pre_nms_topk`` anchors per level by logit, decoded, clipped to the unpadded image, empty boxes dropped,
NMS per level, then the ``post_nms_topk`` best over all levels (detectron2 ``find_top_rpn_proposals``; per-level
NMS is its ``batched_nms`` with the level as the group). Proposals carry no gradient. Training targets: anchors are
matched to the ground truth (0.3 / 0.7 with low-quality matches) and a balanced sample is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .boxes import clip_boxes, decode_boxes, encode_boxes, nonempty, pairwise_iou
from .config import RPNConfig
from .layers import Conv2d
from .matching import match_boxes, sample_balanced
from .nms import nms

__all__ = ["RPNHead", "Proposals", "AnchorTargets", "propose", "anchor_targets", "RPN_BOX_WEIGHTS"]

RPN_BOX_WEIGHTS = (1.0, 1.0, 1.0, 1.0)


class RPNHead(eqx.Module):
    """``num_convs`` 3x3 convs with ReLU, then 1x1 objectness (A) and deltas (4A), shared by all levels; weights
    normal(0.01), biases 0 (detectron2 ``StandardRPNHead``)."""

    convs: tuple[Conv2d, ...]
    objectness: Conv2d
    deltas: Conv2d

    def __init__(self, channels: int, num_anchors: int, *, num_convs: int, key: PRNGKeyArray):
        k_convs, k_obj, k_del = jr.split(key, 3)
        self.convs = tuple(Conv2d(channels, channels, 3, std=0.01, key=k) for k in jr.split(k_convs, num_convs))
        self.objectness = Conv2d(channels, num_anchors, 1, std=0.01, key=k_obj)
        self.deltas = Conv2d(channels, 4 * num_anchors, 1, std=0.01, key=k_del)

    def __call__(self, levels: Sequence[Float[Array, "_ _ c"]]) -> tuple[Float[Array, " n"], Float[Array, "n 4"]]:
        """Objectness logits [n] and deltas [n, 4] of one image, in `pyramid_anchors` order."""
        logits, deltas = [], []
        for x in levels:
            for conv in self.convs:
                x = jax.nn.relu(conv(x))
            logits.append(self.objectness(x).reshape(-1))
            deltas.append(self.deltas(x).reshape(-1, 4))
        return jnp.concatenate(logits), jnp.concatenate(deltas)


class Proposals(NamedTuple):
    boxes: Float[Array, "p 4"]
    logits: Float[Array, " p"]
    valid: Bool[Array, " p"]


def propose(
    logits: Float[Array, " n"],
    deltas: Float[Array, "n 4"],
    anchors: Float[Array, "n 4"],
    level_counts: Sequence[int],
    image_hw: Int[Array, " 2"],
    *,
    pre_nms_topk: int,
    post_nms_topk: int,
    nms_threshold: float,
) -> Proposals:
    """The ``post_nms_topk`` proposals of one image (padded; ``valid`` marks real ones), best first."""
    logits, deltas = jax.lax.stop_gradient(logits), jax.lax.stop_gradient(deltas)
    height, width = image_hw[0], image_hw[1]
    boxes_all, logits_all, valid_all = [], [], []
    start = 0
    for count in level_counts:
        level_logits = logits[start : start + count]
        k = min(pre_nms_topk, count)
        top, idx = jax.lax.top_k(level_logits, k)
        boxes = decode_boxes(deltas[start : start + count][idx], anchors[start : start + count][idx], RPN_BOX_WEIGHTS)
        boxes = clip_boxes(boxes, height, width)
        valid = nonempty(boxes) & jnp.all(jnp.isfinite(boxes), axis=-1) & jnp.isfinite(top)
        keep, kept = nms(boxes, top, valid, iou_threshold=nms_threshold, max_output=min(k, post_nms_topk))
        boxes_all.append(boxes[keep])
        logits_all.append(jnp.where(kept, top[keep], -jnp.inf))
        valid_all.append(kept)
        start += count
    boxes, scores, valid = (jnp.concatenate(v) for v in (boxes_all, logits_all, valid_all))
    k = min(post_nms_topk, scores.shape[0])
    best, idx = jax.lax.top_k(scores, k)
    pad = post_nms_topk - k
    boxes, best, ok = boxes[idx], best, valid[idx]
    if pad:  # fewer candidates than asked for (tiny inputs): pad with invalid zero boxes
        boxes = jnp.concatenate([boxes, jnp.zeros((pad, 4), boxes.dtype)])
        best = jnp.concatenate([best, jnp.full((pad,), -jnp.inf, best.dtype)])
        ok = jnp.concatenate([ok, jnp.zeros((pad,), bool)])
    return Proposals(jnp.where(ok[:, None], boxes, 0.0), best, ok)


class AnchorTargets(NamedTuple):
    """A balanced sample of anchors: ``index`` into the anchors, ``positive``/``valid`` flags, and the deltas
    taking each positive anchor to its ground truth (zeros elsewhere)."""

    index: Int[Array, " s"]
    positive: Bool[Array, " s"]
    valid: Bool[Array, " s"]
    deltas: Float[Array, "s 4"]


def anchor_targets(
    anchors: Float[Array, "n 4"],
    gt_boxes: Float[Array, "m 4"],
    gt_valid: Bool[Array, " m"],
    config: RPNConfig,
    *,
    key: PRNGKeyArray,
) -> AnchorTargets:
    """Match anchors to one image's ground truth and sample ``config.batch_per_image`` of them."""
    iou = pairwise_iou(anchors, gt_boxes)
    matched, labels = match_boxes(
        iou, gt_valid, low=config.negative_iou, high=config.positive_iou, allow_low_quality=True
    )
    index, positive, valid = sample_balanced(
        labels, num_samples=config.batch_per_image, positive_fraction=config.positive_fraction, key=key
    )
    deltas = encode_boxes(anchors[index], gt_boxes[matched[index]], RPN_BOX_WEIGHTS)
    deltas = jnp.where(positive[:, None], deltas, 0.0)
    return AnchorTargets(index, positive, valid, jax.lax.stop_gradient(deltas))

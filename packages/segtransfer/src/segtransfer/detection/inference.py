"""`detect`: the jit-able test-time forward pass, padded to a fixed number of detections per image.

Proposals (per-level top 1000, NMS 0.7, best 1000) -> box head -> softmax scores and class-specific boxes,
clipped to the unpadded image -> (box, class) pairs with score > 0.05 -> the ``max_candidates`` best pairs ->
per-class NMS 0.5 -> best ``max_detections`` -> mask head on those boxes, the detected class's channel, sigmoid
(detectron2 ``fast_rcnn_inference`` + ``mask_rcnn_inference``). Boxes are in input pixels; `coco_results` maps them
and the masks back to the original images.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from .boxes import clip_boxes, decode_boxes, nonempty
from .model import MaskRCNN
from .nms import nms
from .objective import pool_rois
from .rpn import propose

__all__ = ["Detections", "detect"]


class Detections(NamedTuple):
    """Per image, best first; rows where ``valid`` is False are padding. ``masks`` are probabilities on each
    box's 28x28 grid. ``exact`` is False for an image where the candidate cap may have changed the result
    (see `InferenceConfig`)."""

    boxes: Float[Array, "b d 4"]
    scores: Float[Array, "b d"]
    classes: Int[Array, "b d"]
    masks: Float[Array, "b d s s"]
    valid: Bool[Array, "b d"]
    exact: Bool[Array, " b"]


def _select(cls_logits, box_deltas, proposals, proposals_valid, image_hw, config, box_weights):
    """Score filtering, candidate cap and per-class NMS for one image."""
    num_classes = box_deltas.shape[1]
    scores = jax.nn.softmax(cls_logits.astype(jnp.float32), axis=-1)[:, :num_classes]
    boxes = decode_boxes(box_deltas, jnp.broadcast_to(proposals[:, None, :], box_deltas.shape), box_weights)
    boxes = clip_boxes(boxes, image_hw[0], image_hw[1])
    ok = (
        proposals_valid[:, None]
        & (scores > config.score_threshold)
        & nonempty(boxes)
        & jnp.all(jnp.isfinite(boxes), axis=-1)
    )
    flat_scores = jnp.where(ok, scores, -jnp.inf).reshape(-1)
    k = min(config.max_candidates, flat_scores.shape[0])
    top, index = jax.lax.top_k(flat_scores, k)
    candidates = jnp.isfinite(top)
    cand_boxes = boxes.reshape(-1, 4)[index]
    cand_classes = (index % num_classes).astype(jnp.int32)
    keep, kept = nms(
        cand_boxes, top, candidates, iou_threshold=config.nms_threshold, max_output=config.max_detections,
        classes=cand_classes,
    )
    exact = (jnp.sum(kept) >= config.max_detections) | (jnp.sum(ok) <= k)
    return (
        jnp.where(kept[:, None], cand_boxes[keep], 0.0),
        jnp.where(kept, top[keep], 0.0),
        jnp.where(kept, cand_classes[keep], -1),
        kept,
        exact,
    )


def detect(model: MaskRCNN, images: Float[Array, "b h w 3"], image_hw: Int[Array, "b 2"]) -> Detections:
    """Detections for a batch of [0, 1] pixels; ``image_hw`` is each image's unpadded size (the pipeline's
    ``image_hw``)."""
    c = model.config
    b = images.shape[0]
    levels = model.features(images, inference=True)
    logits, deltas = jax.vmap(model.rpn_head)(levels)
    anchors_np, counts = model.anchors()
    proposals = jax.vmap(
        partial(
            propose, anchors=jnp.asarray(anchors_np), level_counts=counts, pre_nms_topk=c.rpn.pre_nms_topk_test,
            post_nms_topk=c.rpn.post_nms_topk_test, nms_threshold=c.rpn.nms_threshold,
        )
    )(logits, deltas, image_hw=image_hw)
    p = proposals.boxes.shape[1]
    pooled = pool_rois(model, levels, proposals.boxes, output_size=c.roi.box_pool_size)
    cls_logits, box_deltas = model.box_head(pooled.reshape(b * p, *pooled.shape[2:]))
    boxes, scores, classes, valid, exact = jax.vmap(
        lambda lg, dl, pb, pv, hw: _select(lg, dl, pb, pv, hw, c.inference, c.roi.box_weights)
    )(cls_logits.reshape(b, p, -1), box_deltas.reshape(b, p, *box_deltas.shape[1:]), proposals.boxes,
      proposals.valid, image_hw)
    d = boxes.shape[1]
    pooled_masks = pool_rois(model, levels, boxes, output_size=c.roi.mask_pool_size)
    mask_logits = model.mask_head(pooled_masks.reshape(b * d, *pooled_masks.shape[2:]))
    own = jnp.take_along_axis(mask_logits, jnp.clip(classes.reshape(-1), 0)[:, None, None, None], axis=-1)[..., 0]
    masks = jax.nn.sigmoid(own.astype(jnp.float32)).reshape(b, d, *own.shape[1:])
    return Detections(boxes, scores, classes, masks, valid, exact)

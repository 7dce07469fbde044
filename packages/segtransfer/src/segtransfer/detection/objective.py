"""`detection_loss`: the Mask R-CNN training forward pass, from a padded batch to the summed loss.

Encoder + pyramid -> RPN head -> anchor targets and RPN losses -> proposals (no gradient) -> ROI sampling with the
ground truth appended -> RoIAlign 7x7 -> box head losses -> RoIAlign 14x14 of the foreground slots -> mask head
loss. Everything has a static shape; per-image work is ``vmap``-ed. The total is the unweighted sum of the five
losses (detectron2).
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from .losses import mask_loss, roi_box_loss, roi_class_loss, rpn_box_loss, rpn_objectness_loss
from .model import MaskRCNN
from .roi_align import assign_levels, multilevel_roi_align
from .roi_targets import mask_targets, sample_rois
from .rpn import anchor_targets, propose

__all__ = ["detection_loss", "BATCH_FIELDS", "pool_rois"]

# The batch entries the loss reads (the input pipeline adds host-side bookkeeping the step ignores).
BATCH_FIELDS = ("image", "boxes", "classes", "masks", "valid", "image_hw")


def pool_rois(model: MaskRCNN, levels, boxes: Float[Array, "b r 4"], *, output_size: int) -> Float[Array, "b r s s c"]:
    """RoIAlign of each image's boxes from the ROI levels, each box from its FPN level."""
    roi = model.config.roi
    strides = model.roi_strides
    min_level = int(math.log2(strides[0]))

    def one(image_levels, image_boxes):
        level = assign_levels(
            image_boxes, num_levels=len(strides), min_level=min_level,
            canonical_size=roi.canonical_size, canonical_level=roi.canonical_level,
        )
        return multilevel_roi_align(
            image_levels, strides, image_boxes, level, output_size=output_size, sampling_ratio=roi.sampling_ratio
        )

    return jax.vmap(one)(tuple(levels[: len(strides)]), boxes)


def detection_loss(model: MaskRCNN, batch: dict, *, key: PRNGKeyArray) -> tuple[Float[Array, ""], dict]:
    """``(total loss, metrics)`` of one training batch (fields: `BATCH_FIELDS`, see `segtransfer.detection.data`).

    ``metrics`` holds the five losses and sampling statistics as device scalars (nothing is synced to the host).
    """
    missing = [f for f in BATCH_FIELDS if f not in batch]
    if missing:
        raise ValueError(f"batch lacks {missing}; a detection batch has {BATCH_FIELDS} (segtransfer.detection.data)")
    c = model.config
    images, gt_boxes, gt_classes = batch["image"], batch["boxes"], batch["classes"]
    gt_masks, gt_valid, image_hw = batch["masks"], batch["valid"], batch["image_hw"]
    b = images.shape[0]
    k_enc, k_rpn, k_roi = jr.split(key, 3)

    levels = model.features(images, key=k_enc, inference=False)
    logits, deltas = jax.vmap(model.rpn_head)(levels)
    anchors_np, counts = model.anchors()
    anchors = jnp.asarray(anchors_np)

    targets = jax.vmap(lambda g, v, k: anchor_targets(anchors, g, v, c.rpn, key=k))(
        gt_boxes, gt_valid, jr.split(k_rpn, b)
    )
    sampled_logits = jnp.take_along_axis(logits, targets.index, axis=1)
    sampled_deltas = jnp.take_along_axis(deltas, targets.index[..., None], axis=1)
    normalizer = float(c.rpn.batch_per_image * b)
    loss_rpn_cls = rpn_objectness_loss(sampled_logits, targets.positive, targets.valid, normalizer)
    loss_rpn_box = rpn_box_loss(sampled_deltas, targets.deltas, targets.positive, normalizer)

    proposals = jax.vmap(
        partial(
            propose, anchors=anchors, level_counts=counts, pre_nms_topk=c.rpn.pre_nms_topk_train,
            post_nms_topk=c.rpn.post_nms_topk_train, nms_threshold=c.rpn.nms_threshold,
        )
    )(logits, deltas, image_hw=image_hw)
    rois = jax.vmap(
        lambda p, pv, g, gc, gv, k: sample_rois(p, pv, g, gc, gv, c.roi, num_classes=c.num_classes, key=k)
    )(proposals.boxes, proposals.valid, gt_boxes, gt_classes, gt_valid, jr.split(k_roi, b))

    pooled = pool_rois(model, levels, rois.boxes, output_size=c.roi.box_pool_size)
    s = c.roi.batch_per_image
    cls_logits, box_deltas = model.box_head(pooled.reshape(b * s, *pooled.shape[2:]))
    flat = lambda x: x.reshape(b * s, *x.shape[2:])  # noqa: E731
    loss_cls = roi_class_loss(cls_logits, flat(rois.classes), flat(rois.valid))
    loss_box = roi_box_loss(box_deltas, flat(rois.classes), flat(rois.deltas), flat(rois.foreground), flat(rois.valid))

    f = c.roi.max_foreground  # foreground ROIs come first in each image's sample
    mask_boxes, mask_classes = rois.boxes[:, :f], rois.classes[:, :f]
    mask_fg = rois.foreground[:, :f]
    pooled_masks = pool_rois(model, levels, mask_boxes, output_size=c.roi.mask_pool_size)
    mask_logits = model.mask_head(pooled_masks.reshape(b * f, *pooled_masks.shape[2:]))
    size = mask_logits.shape[1]
    mask_gt = jax.vmap(
        lambda m, g, r, i: mask_targets(m, g, r, i, size=size, sampling_ratio=c.roi.sampling_ratio)
    )(gt_masks, gt_boxes, mask_boxes, rois.gt_index[:, :f])
    loss_mask = mask_loss(
        mask_logits, mask_classes.reshape(-1), mask_gt.reshape(b * f, size, size), mask_fg.reshape(-1)
    )

    total = loss_rpn_cls + loss_rpn_box + loss_cls + loss_box + loss_mask
    predicted = jnp.argmax(cls_logits, axis=-1)
    valid = flat(rois.valid)
    metrics = {
        "loss": total,
        "loss_rpn_cls": loss_rpn_cls,
        "loss_rpn_box": loss_rpn_box,
        "loss_cls": loss_cls,
        "loss_box": loss_box,
        "loss_mask": loss_mask,
        "roi_accuracy": jnp.sum((predicted == flat(rois.classes)) & valid) / jnp.maximum(jnp.sum(valid), 1),
        "num_foreground": jnp.sum(rois.foreground) / b,
        "num_rpn_positive": jnp.sum(targets.positive) / b,
        "num_proposals": jnp.sum(proposals.valid) / b,
    }
    return total, metrics

"""Training targets of the ROI heads: proposal sampling (with the ground truth appended) and mask targets.

`sample_rois` is detectron2 ``StandardROIHeads.label_and_sample_proposals``: the ground-truth boxes join the
proposals, each candidate takes its best-overlapping ground truth, IoU >= 0.5 is foreground with that object's
class and anything else background (class ``num_classes``), and a balanced sample of ``batch_per_image`` is drawn
(at most 25% foreground). Foreground ROIs come first, so the first ``max_foreground`` slots hold every one of them
(the mask head's batch).

`mask_targets` rasterises each foreground ROI's ground-truth mask on the ROI's 28x28 grid. Ground-truth masks
arrive *box-relative*: the object's mask inside its box resized to ``S x S`` (see `segtransfer.detection.data`),
which keeps a padded batch small (``m * S * S`` bytes per image instead of ``m * H * W``). A ROI cell's value is
RoIAlign (aligned, 2x2 samples) of that grid zero-padded by one cell, thresholded at 0.5: what detectron2 gets by
RoIAlign of a full-image bitmask (``BitMasks.crop_and_resize``) when the mask is sampled at S x S inside its box.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, UInt8

from .boxes import encode_boxes, pairwise_iou
from .config import ROIConfig
from .matching import match_boxes, sample_balanced
from .roi_align import roi_align

__all__ = ["ROISample", "sample_rois", "mask_targets"]


class ROISample(NamedTuple):
    """``batch_per_image`` sampled ROIs of one image (foreground first). ``classes`` is the target class
    (``num_classes`` = background); ``deltas`` the box targets of foreground ROIs (zeros elsewhere); ``gt_index``
    the matched ground-truth row."""

    boxes: Float[Array, "s 4"]
    classes: Int[Array, " s"]
    deltas: Float[Array, "s 4"]
    gt_index: Int[Array, " s"]
    foreground: Bool[Array, " s"]
    valid: Bool[Array, " s"]


def sample_rois(
    proposals: Float[Array, "p 4"],
    proposals_valid: Bool[Array, " p"],
    gt_boxes: Float[Array, "m 4"],
    gt_classes: Int[Array, " m"],
    gt_valid: Bool[Array, " m"],
    config: ROIConfig,
    *,
    num_classes: int,
    key: PRNGKeyArray,
) -> ROISample:
    """Label proposals + ground truth against the ground truth and sample ``config.batch_per_image``."""
    boxes = jnp.concatenate([proposals, gt_boxes])
    candidate = jnp.concatenate([proposals_valid, gt_valid])
    iou = pairwise_iou(boxes, gt_boxes)
    matched, labels = match_boxes(
        iou, gt_valid, low=config.foreground_iou, high=config.foreground_iou, allow_low_quality=False
    )
    labels = jnp.where(candidate, labels, -1)
    index, foreground, valid = sample_balanced(
        labels, num_samples=config.batch_per_image, positive_fraction=config.positive_fraction, key=key
    )
    rois, gt_index = boxes[index], matched[index]
    classes = jnp.where(foreground, gt_classes[gt_index], num_classes).astype(jnp.int32)
    deltas = jnp.where(foreground[:, None], encode_boxes(rois, gt_boxes[gt_index], config.box_weights), 0.0)
    return jax.lax.stop_gradient(ROISample(rois, classes, deltas, gt_index, foreground, valid))


def mask_targets(
    gt_masks: UInt8[Array, "m g g"],
    gt_boxes: Float[Array, "m 4"],
    rois: Float[Array, "r 4"],
    gt_index: Int[Array, " r"],
    *,
    size: int,
    sampling_ratio: int = 2,
) -> Float[Array, "r size size"]:
    """0/1 float targets [r, size, size] for ROIs matched to rows ``gt_index`` of box-relative ``gt_masks``
    (uint8 0..255, 255 = object; area-averaged edges in between)."""
    grid = gt_masks.shape[-1]
    masks = jnp.pad(gt_masks[gt_index].astype(jnp.float32) / 255.0, ((0, 0), (1, 1), (1, 1)))[..., None]
    gt = gt_boxes[gt_index]
    scale_x = grid / jnp.maximum(gt[:, 2] - gt[:, 0], 1e-6)
    scale_y = grid / jnp.maximum(gt[:, 3] - gt[:, 1], 1e-6)
    # ROI corners in the padded mask's continuous coordinates (cell j of the S x S grid covers [j + 1, j + 2]).
    local = jnp.stack(
        [
            (rois[:, 0] - gt[:, 0]) * scale_x + 1.0,
            (rois[:, 1] - gt[:, 1]) * scale_y + 1.0,
            (rois[:, 2] - gt[:, 0]) * scale_x + 1.0,
            (rois[:, 3] - gt[:, 1]) * scale_y + 1.0,
        ],
        axis=-1,
    )
    pooled = jax.vmap(
        lambda m, b: roi_align(m, b[None], output_size=size, sampling_ratio=sampling_ratio)[0, ..., 0]
    )(masks, local)
    return jax.lax.stop_gradient((pooled >= 0.5).astype(jnp.float32))



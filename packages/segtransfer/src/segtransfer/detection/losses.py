"""The five Mask R-CNN losses as plain float32 functions (detectron2 ``RPN.losses``, ``FastRCNNOutputLayers.losses``,
``mask_rcnn_loss``; He et al. 2017, "Mask R-CNN"). Box regression uses detectron2's default ``smooth_l1`` with
``beta = 0``, i.e. L1.

Normalisers follow detectron2: RPN terms are sums over the sampled anchors divided by ``batch_per_image *
num_images`` (fixed); Fast R-CNN terms are over all sampled ROIs (class: mean cross-entropy; box: L1 summed over
foreground ROIs' class-specific deltas divided by the number of sampled ROIs); the mask term is the mean binary
cross-entropy over the 28x28 pixels of foreground ROIs, on the channel of the ROI's class.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

__all__ = ["rpn_objectness_loss", "rpn_box_loss", "roi_class_loss", "roi_box_loss", "mask_loss"]


def _bce(logits, targets):
    # log(1 + exp(-|x|)) + max(x, 0) - x * t: stable binary cross-entropy with logits.
    return jax.nn.softplus(-jnp.abs(logits)) + jnp.maximum(logits, 0.0) - logits * targets


def rpn_objectness_loss(
    logits: Float[Array, "*s"], positive: Bool[Array, "*s"], valid: Bool[Array, "*s"], normalizer: float
) -> Float[Array, ""]:
    """Binary cross-entropy of sampled anchors' objectness (positive = 1), summed, / ``normalizer``.

    Example: ``rpn_objectness_loss(jnp.zeros(4), pos, jnp.ones(4, bool), 4.0) == log(2)``.
    """
    loss = _bce(logits.astype(jnp.float32), positive.astype(jnp.float32))
    return jnp.sum(jnp.where(valid, loss, 0.0)) / normalizer


def rpn_box_loss(
    deltas: Float[Array, "*s 4"], targets: Float[Array, "*s 4"], positive: Bool[Array, "*s"], normalizer: float
) -> Float[Array, ""]:
    """L1 between predicted and target deltas of positive anchors, summed, / ``normalizer``."""
    diff = jnp.abs(deltas.astype(jnp.float32) - targets)
    return jnp.sum(jnp.where(positive[..., None], diff, 0.0)) / normalizer


def roi_class_loss(
    logits: Float[Array, "r k1"], classes: Int[Array, " r"], valid: Bool[Array, " r"]
) -> Float[Array, ""]:
    """Softmax cross-entropy over ``num_classes + 1`` (background last), mean over valid ROIs."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, classes[:, None], axis=-1)[:, 0]
    return jnp.sum(jnp.where(valid, nll, 0.0)) / jnp.maximum(jnp.sum(valid), 1).astype(jnp.float32)


def roi_box_loss(
    deltas: Float[Array, "r k 4"],
    classes: Int[Array, " r"],
    targets: Float[Array, "r 4"],
    foreground: Bool[Array, " r"],
    valid: Bool[Array, " r"],
) -> Float[Array, ""]:
    """L1 between the deltas predicted for each foreground ROI's own class and its targets, summed, / number of
    valid ROIs."""
    num_classes = deltas.shape[1]
    own = jnp.take_along_axis(deltas, jnp.clip(classes, 0, num_classes - 1)[:, None, None], axis=1)[:, 0]
    diff = jnp.abs(own.astype(jnp.float32) - targets)
    total = jnp.sum(jnp.where(foreground[:, None], diff, 0.0))
    return total / jnp.maximum(jnp.sum(valid), 1).astype(jnp.float32)


def mask_loss(
    logits: Float[Array, "r s s k"],
    classes: Int[Array, " r"],
    targets: Float[Array, "r s s"],
    foreground: Bool[Array, " r"],
) -> Float[Array, ""]:
    """Mean binary cross-entropy over the pixels of foreground ROIs, on each ROI's class channel; 0 without
    foreground (detectron2 returns ``mask_logits.sum() * 0`` there)."""
    num_classes = logits.shape[-1]
    own = jnp.take_along_axis(logits, jnp.clip(classes, 0, num_classes - 1)[:, None, None, None], axis=-1)[..., 0]
    loss = _bce(own.astype(jnp.float32), targets)
    pixels = targets.shape[1] * targets.shape[2]
    count = jnp.maximum(jnp.sum(foreground) * pixels, 1).astype(jnp.float32)
    return jnp.sum(jnp.where(foreground[:, None, None], loss, 0.0)) / count

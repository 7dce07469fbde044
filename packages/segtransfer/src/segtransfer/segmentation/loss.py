"""Per-pixel softmax cross-entropy with an ignore index (the FCN segmentation loss)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Integer

__all__ = ["pixel_cross_entropy"]


def pixel_cross_entropy(
    logits: Float[Array, "b h w k"],
    labels: Integer[Array, "b h w"],
    ignore_index: int = 255,
) -> Float[Array, ""]:
    """Mean softmax cross-entropy over the pixels whose label is not ``ignore_index``.

    Computed in float32 whatever the logits' dtype. The mean runs over valid pixels of the whole batch (mmseg's
    ``CrossEntropyLoss(avg_non_ignore=True)``; mmseg's default ``avg_non_ignore=False`` divides by all pixels, which
    only rescales the loss by the valid fraction). A batch with no valid pixel gives 0 (and zero gradients), not NaN.
    A label outside ``[0, k)`` that is not ``ignore_index`` is treated as ignored as well, because we cannot raise
    inside jit; `segtransfer.segmentation.metrics.confusion_matrix` on numpy masks is the place to validate data.

    Example:
        >>> logits = jnp.zeros((1, 2, 2, 3))
        >>> labels = jnp.array([[[0, 1], [2, 255]]], dtype=jnp.int32)
        >>> float(pixel_cross_entropy(logits, labels))  # ln 3 on the three valid pixels
        1.0986...
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(
            f"logits.shape={logits.shape} and labels.shape={labels.shape}: expected logits [b, h, w, k] over "
            "labels [b, h, w]"
        )
    num_classes = logits.shape[-1]
    logits = logits.astype(jnp.float32)
    valid = (labels != ignore_index) & (labels >= 0) & (labels < num_classes)
    safe_labels = jnp.where(valid, labels, 0)
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    nll = -jnp.take_along_axis(log_probs, safe_labels[..., None].astype(jnp.int32), axis=-1)[..., 0]
    nll = jnp.where(valid, nll, 0.0)
    count = valid.sum().astype(jnp.float32)
    return nll.sum() / jnp.maximum(count, 1.0)

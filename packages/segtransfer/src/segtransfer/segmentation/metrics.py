"""Semantic-segmentation metrics with mmsegmentation semantics: confusion matrix, per-class IoU, mIoU, aAcc.

mmsegmentation (`mmseg/evaluation/metrics/iou_metric.py`, `intersect_and_union` + `total_area_to_metrics`) sums
per-class intersection I, predicted area P and label area L over the whole split, then
``IoU_c = I_c / (P_c + L_c - I_c)``, mIoU = nanmean over classes (a class with zero union is NaN and skipped; a class
that is predicted but absent from the labels has I = 0 and union > 0, so it counts as 0) and
``aAcc = sum I / sum L``. All four areas are read off one confusion matrix ``C[label, pred]``: I = diag, L = row
sums, P = column sums, which is why we accumulate only the matrix.

Two paths, chosen by the input type:
- numpy arrays -> numpy ``int64`` matrix (exact for any split size), with input validation;
- JAX arrays (or tracers) -> jit-able ``int32`` matrix built with ``jnp.bincount``. int32 counts are exact up to
  2**31 - 1 (about 2.1e9) pixels per cell *per call*; a 512x512 batch of 16 has 4.2e6 pixels, so one call never
  overflows. Accumulate a split on the host in int64 (``total += np.asarray(cm, np.int64)``), which
  `finetune.evaluate` does; ADE20K val at full resolution is ~5e8 pixels, so even an int32 running total would fit,
  but COCO-Stuff-sized splits would not.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Integer, Shaped

__all__ = ["confusion_matrix", "miou"]


def _check_num_classes(num_classes: int, ignore_index: int) -> None:
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes={num_classes!r}: expected a positive int")
    if 0 <= ignore_index < num_classes:
        raise ValueError(
            f"ignore_index={ignore_index} lies inside the class range [0, {num_classes}); "
            "it would silently drop a real class (ADE20K uses 255 after reduce_zero_label)"
        )


def confusion_matrix(
    pred: Integer[Array | np.ndarray, "*shape"],
    label: Integer[Array | np.ndarray, "*shape"],
    num_classes: int,
    ignore_index: int = 255,
) -> Integer[Array | np.ndarray, "k k"]:
    """Confusion matrix ``C[label, pred]`` of integer class maps, ignoring pixels whose label is ``ignore_index``.

    ``pred`` and ``label`` have the same shape (any, e.g. ``[b, h, w]``). With numpy inputs the result is a numpy
    ``int64`` array and a label or prediction outside ``[0, num_classes)`` (other than an ignored label) raises
    ValueError. With JAX inputs the function is jit-able (``num_classes`` and ``ignore_index`` static), returns
    ``int32`` and, since it cannot raise inside jit, drops such out-of-range pixels (argmax predictions are always in
    range). See the module docstring for overflow bounds and how to accumulate over a split.

    Example:
        >>> cm = confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 255]), num_classes=2)
        >>> cm.tolist()
        [[1, 0], [0, 1]]
    """
    _check_num_classes(num_classes, ignore_index)
    if pred.shape != label.shape:
        raise ValueError(f"pred.shape={pred.shape} != label.shape={label.shape}: expected equal shapes")
    if isinstance(pred, np.ndarray) and isinstance(label, np.ndarray):
        return _confusion_numpy(pred, label, num_classes, ignore_index)
    return _confusion_jax(jnp.asarray(pred), jnp.asarray(label), num_classes, ignore_index)


def _confusion_numpy(pred: np.ndarray, label: np.ndarray, num_classes: int, ignore_index: int) -> np.ndarray:
    pred = pred.reshape(-1).astype(np.int64)
    label = label.reshape(-1).astype(np.int64)
    valid = label != ignore_index
    pred, label = pred[valid], label[valid]
    for name, arr in (("label", label), ("pred", pred)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(
                f"{name} has values in [{arr.min()}, {arr.max()}] on non-ignored pixels: expected classes in "
                f"[0, {num_classes}) or ignore_index={ignore_index} in the label"
            )
    flat = label * num_classes + pred
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _confusion_jax(pred: Array, label: Array, num_classes: int, ignore_index: int) -> Array:
    pred = pred.reshape(-1).astype(jnp.int32)
    label = label.reshape(-1).astype(jnp.int32)
    valid = (label != ignore_index) & (label >= 0) & (label < num_classes) & (pred >= 0) & (pred < num_classes)
    flat = jnp.where(valid, label * num_classes + pred, 0)
    # weights (not a masked index) keep the shape static; bincount of int32 weights gives int32 counts.
    counts = jnp.bincount(flat, weights=valid.astype(jnp.int32), length=num_classes * num_classes)
    return counts.astype(jnp.int32).reshape(num_classes, num_classes)


def miou(confusion: Shaped[Array | np.ndarray, "k k"]) -> dict[str, float | np.ndarray]:
    """mIoU, per-class IoU and aAcc from a confusion matrix ``C[label, pred]`` summed over the split.

    Returns ``{"miou": float, "iou": float64 [k] (NaN where union is 0), "aacc": float, "acc": float64 [k]
    (per-class accuracy I / label area, NaN where the class has no label pixel)}``; "miou" is the nanmean of "iou"
    (NaN when every union is 0), "aacc" = trace / total (NaN for an empty matrix). Computed in numpy float64 on the
    host (this is reporting, not training).
    """
    cm = np.asarray(confusion)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion.shape={cm.shape}: expected a square [num_classes, num_classes] matrix")
    if not (np.issubdtype(cm.dtype, np.integer) or np.issubdtype(cm.dtype, np.floating)):
        raise TypeError(f"confusion.dtype={cm.dtype}: expected integer or float counts")
    cm = cm.astype(np.float64)
    if np.any(cm < 0):
        raise ValueError("confusion has negative entries: expected pixel counts (did an int32 total overflow?)")
    inter = np.diag(cm)
    area_label = cm.sum(axis=1)
    area_pred = cm.sum(axis=0)
    union = area_label + area_pred - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union  # 0/0 -> NaN for classes never seen nor predicted
        acc = inter / area_label
        aacc = float(inter.sum() / area_label.sum()) if area_label.sum() > 0 else float("nan")
    valid = ~np.isnan(iou)
    miou_value = float(iou[valid].mean()) if valid.any() else float("nan")
    return {"miou": miou_value, "iou": iou, "aacc": aacc, "acc": acc}

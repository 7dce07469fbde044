"""Pasting per-box mask probabilities back into a full image (detectron2 ``paste_masks_in_image``).

A box's ``s x s`` mask covers the box exactly; image pixel ``(y, x)`` (centre ``(y + 0.5, x + 0.5)``) reads the
mask bilinearly at ``((x + 0.5 - x1) / (x2 - x1)) * s - 0.5`` (and likewise for y) with zeros outside the mask,
i.e. ``torch.nn.functional.grid_sample(align_corners=False, padding_mode="zeros")``, and is foreground where the
value is >= ``threshold``. Bilinear weights are separable, so each mask is pasted as ``Wy @ mask @ Wx.T``.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Bool, Float

__all__ = ["paste_masks"]


def _weights(start: float, end: float, length: int, size: int) -> np.ndarray:
    """[length, size] bilinear weights of image pixels 0..length-1 on a mask axis of ``size`` cells."""
    extent = max(end - start, 1e-6)
    pos = (np.arange(length, dtype=np.float64) + 0.5 - start) / extent * size - 0.5
    low = np.floor(pos)
    frac = pos - low
    out = np.zeros((length, size), np.float64)
    rows = np.arange(length)
    for offset, weight in ((0, 1.0 - frac), (1, frac)):
        index = low + offset
        inside = (index >= 0) & (index < size)
        out[rows[inside], index[inside].astype(np.int64)] += weight[inside]
    return out


def paste_masks(
    masks: Float[np.ndarray, "n s1 s2"],
    boxes: Float[np.ndarray, "n 4"],
    height: int,
    width: int,
    *,
    threshold: float = 0.5,
) -> Bool[np.ndarray, "n h w"]:
    """Binary ``[n, height, width]`` masks from per-box probabilities ``masks`` and boxes ``x1 y1 x2 y2`` in the
    target image's pixels."""
    masks = np.asarray(masks, np.float64)
    boxes = np.asarray(boxes, np.float64)
    if masks.ndim != 3 or masks.shape[1] != masks.shape[2] or boxes.shape != (masks.shape[0], 4):
        raise ValueError(f"masks {masks.shape}, boxes {boxes.shape}: expected [n, s, s] and [n, 4]")
    out = np.zeros((masks.shape[0], height, width), bool)
    size = masks.shape[1]
    for i, (mask, (x1, y1, x2, y2)) in enumerate(zip(masks, boxes, strict=True)):
        wy = _weights(y1, y2, height, size)
        wx = _weights(x1, x2, width, size)
        out[i] = (wy @ mask @ wx.T) >= threshold
    return out

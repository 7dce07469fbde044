"""Axis-aligned boxes: areas, the pairwise IoU matrix, R-CNN delta encoding/decoding and clipping.

Boxes are float32 ``(x1, y1, x2, y2)`` in input-image pixels with continuous coordinates (pixel ``i`` covers
``[i, i + 1]``), detectron2's ``XYXY_ABS``. Widths are ``x2 - x1`` (no "+1").
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

__all__ = ["SCALE_CLAMP", "box_area", "pairwise_iou", "encode_boxes", "decode_boxes", "clip_boxes", "nonempty"]

# detectron2's _DEFAULT_SCALE_CLAMP: predicted log-scale factors are clamped so exp() cannot overflow.
SCALE_CLAMP = math.log(1000.0 / 16)


def box_area(boxes: Float[Array, "*n 4"]) -> Float[Array, "*n"]:
    """``(x2 - x1) * (y2 - y1)``, zero for inverted boxes."""
    w = jnp.maximum(boxes[..., 2] - boxes[..., 0], 0.0)
    h = jnp.maximum(boxes[..., 3] - boxes[..., 1], 0.0)
    return w * h


def pairwise_iou(a: Float[Array, "n 4"], b: Float[Array, "m 4"]) -> Float[Array, "n m"]:
    """IoU of every box in ``a`` with every box in ``b``; 0 where the union is empty (degenerate boxes)."""
    lt = jnp.maximum(a[:, None, :2], b[None, :, :2])
    rb = jnp.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = jnp.maximum(rb - lt, 0.0)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return jnp.where(union > 0, inter / jnp.where(union > 0, union, 1.0), 0.0)


def _centre_size(boxes):
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * w, boxes[..., 1] + 0.5 * h, w, h


def encode_boxes(
    sources: Float[Array, "*n 4"], targets: Float[Array, "*n 4"], weights: tuple[float, float, float, float]
) -> Float[Array, "*n 4"]:
    """Deltas ``(dx, dy, dw, dh)`` taking ``sources`` to ``targets`` (R-CNN, detectron2 ``Box2BoxTransform``):
    ``dx = wx (tx - sx) / sw``, ``dw = ww log(tw / sw)``. Sources must have positive width and height; targets of
    zero size give -inf (callers mask those out)."""
    sx, sy, sw, sh = _centre_size(sources)
    tx, ty, tw, th = _centre_size(targets)
    sw_safe, sh_safe = jnp.maximum(sw, 1e-6), jnp.maximum(sh, 1e-6)
    wx, wy, ww, wh = weights
    return jnp.stack(
        [
            wx * (tx - sx) / sw_safe,
            wy * (ty - sy) / sh_safe,
            ww * jnp.log(jnp.maximum(tw, 1e-6) / sw_safe),
            wh * jnp.log(jnp.maximum(th, 1e-6) / sh_safe),
        ],
        axis=-1,
    )


def decode_boxes(
    deltas: Float[Array, "*n 4"], boxes: Float[Array, "*n 4"], weights: tuple[float, float, float, float]
) -> Float[Array, "*n 4"]:
    """Apply ``deltas`` to ``boxes`` (the inverse of `encode_boxes`); ``dw, dh`` are clamped at `SCALE_CLAMP`."""
    cx, cy, w, h = _centre_size(boxes)
    wx, wy, ww, wh = weights
    dx, dy = deltas[..., 0] / wx, deltas[..., 1] / wy
    dw = jnp.minimum(deltas[..., 2] / ww, SCALE_CLAMP)
    dh = jnp.minimum(deltas[..., 3] / wh, SCALE_CLAMP)
    px, py = dx * w + cx, dy * h + cy
    pw, ph = jnp.exp(dw) * w, jnp.exp(dh) * h
    return jnp.stack([px - 0.5 * pw, py - 0.5 * ph, px + 0.5 * pw, py + 0.5 * ph], axis=-1)


def clip_boxes(
    boxes: Float[Array, "*n 4"], height: Array | float | int, width: Array | float | int
) -> Float[Array, "*n 4"]:
    """Clamp x to ``[0, width]`` and y to ``[0, height]`` (the unpadded image size; may be traced scalars)."""
    height, width = jnp.asarray(height, boxes.dtype), jnp.asarray(width, boxes.dtype)
    x1 = jnp.clip(boxes[..., 0], 0.0, width)
    y1 = jnp.clip(boxes[..., 1], 0.0, height)
    x2 = jnp.clip(boxes[..., 2], 0.0, width)
    y2 = jnp.clip(boxes[..., 3], 0.0, height)
    return jnp.stack([x1, y1, x2, y2], axis=-1)


def nonempty(boxes: Float[Array, "*n 4"], min_size: float = 0.0) -> Bool[Array, "*n"]:
    """Width and height both greater than ``min_size`` (detectron2 ``Boxes.nonempty``)."""
    return (boxes[..., 2] - boxes[..., 0] > min_size) & (boxes[..., 3] - boxes[..., 1] > min_size)

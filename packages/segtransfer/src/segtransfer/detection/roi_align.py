"""RoIAlign with ``aligned=True``, a fixed or an adaptive sampling ratio, on one feature map or on a pyramid.

Semantics are torchvision/detectron2 ``ROIAlign(aligned=True)`` (detectron2's ``ROIAlignV2``): a box
``(x1, y1, x2, y2)`` in image pixels is scaled by ``1 / stride`` and shifted by -0.5 (pixel centres sit at
half-integers); each of the ``output_size x output_size`` bins is the mean of ``gy x gx`` bilinear samples at the
bin's regular sub-grid. A sample more than one pixel outside the map (``y < -1`` or ``y > height``) contributes 0;
one within that pixel is clamped to the border.

``sampling_ratio > 0`` fixes ``gy = gx = sampling_ratio`` (the default 2 of the detector here).
``sampling_ratio=0`` is detectron2's default, adaptive sampling: ``gy = ceil(roi_height / output_size)`` and
``gx = ceil(roi_width / output_size)`` per box (in feature pixels). That has no static shape, so the samples are
laid out for at most ``max_sampling_ratio`` per axis and the unused ones masked out: the result equals
torchvision's whenever no box needs more (a box larger than ``max_sampling_ratio * output_size`` feature pixels on
a side is sampled ``max_sampling_ratio`` times per bin there instead). FPN's level assignment keeps boxes near
``canonical_size / stride`` (14 feature pixels at ViTDet's 224 and level 4), i.e. 2-4 samples per bin at a 7x7
output for most boxes.

A pyramid is handled as one flat ``[sum(h * w), c]`` array: every box gathers from its own level through an index
offset, so each sample is one gather whatever the number of levels (as TF's ``multilevel_crop_and_resize``).
`assign_levels` is FPN's rule (Lin et al. 2017, eq. 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

__all__ = ["roi_align", "multilevel_roi_align", "assign_levels"]


def _axis_samples(start, length, size, output_size: int, grid, cap: int):
    """Sample positions along one axis for every box, resolved to two neighbours and their weights.

    start/length: [r] box start and length in feature pixels (after the -0.5 shift); size: [r] map length;
    grid: [r] samples per bin used (at most ``cap``). Returns (low [r, n, 2] int32 indices, weights [r, n, 2])
    with n = output_size * cap; weights are zero for samples outside the map (> 1 pixel away) and for the unused
    sub-bins ``k >= grid``.
    """
    k = np.arange(cap, dtype=np.float32)
    bins = np.arange(output_size, dtype=np.float32)
    g = jnp.maximum(grid, 1).astype(jnp.float32)[:, None, None]
    # bin + (k + 0.5) / grid bin widths from the start: the centre of each of the box's sub-bins.
    fractions = (bins[None, :, None] + (k[None, None, :] + 0.5) / g) / np.float32(output_size)  # [r, out, cap]
    used = jnp.broadcast_to(k[None, None, :] < grid.astype(jnp.float32)[:, None, None], fractions.shape)
    used = used.reshape(len(start), -1)
    pos = start[:, None] + fractions.reshape(len(start), -1) * length[:, None]
    size_f = size.astype(jnp.float32)[:, None]
    inside = (pos >= -1.0) & (pos <= size_f) & used
    pos = jnp.maximum(pos, 0.0)
    low = jnp.floor(pos)
    at_end = low >= size_f - 1.0
    low = jnp.where(at_end, size_f - 1.0, low)
    pos = jnp.where(at_end, low, pos)
    high = jnp.where(at_end, low, low + 1.0)
    frac = pos - low
    weights = jnp.where(inside[..., None], jnp.stack([1.0 - frac, frac], axis=-1), 0.0)
    indices = jnp.stack([low, high], axis=-1).astype(jnp.int32)
    return indices, weights


def _grid(length, output_size: int, sampling_ratio: int, cap: int):
    """Samples per bin along one axis: fixed, or detectron2's ``ceil(length / output_size)`` capped at ``cap``."""
    if sampling_ratio > 0:
        return jnp.full(length.shape, sampling_ratio, jnp.int32)
    return jnp.clip(jnp.ceil(length / output_size), 0, cap).astype(jnp.int32)


def _pool(flat, offsets, widths, heights, starts_y, starts_x, lengths_y, lengths_x, output_size, sampling_ratio,
          max_sampling_ratio):
    cap = sampling_ratio if sampling_ratio > 0 else max_sampling_ratio
    grid_y = _grid(lengths_y, output_size, sampling_ratio, cap)
    grid_x = _grid(lengths_x, output_size, sampling_ratio, cap)
    y_idx, y_w = _axis_samples(starts_y, lengths_y, heights, output_size, grid_y, cap)
    x_idx, x_w = _axis_samples(starts_x, lengths_x, widths, output_size, grid_x, cap)
    index = (
        offsets[:, None, None, None, None]
        + y_idx[:, :, :, None, None] * widths[:, None, None, None, None]
        + x_idx[:, None, None, :, :]
    )  # [r, ny, 2, nx, 2]
    values = jnp.take(flat, index, axis=0)  # [r, ny, 2, nx, 2, c]
    samples = jnp.einsum("ryaxbc,rya,rxb->ryxc", values, y_w.astype(flat.dtype), x_w.astype(flat.dtype))
    r, ny, nx, c = samples.shape
    samples = samples.reshape(r, output_size, cap, output_size, cap, c)
    # torchvision divides each bin's sum by max(gy * gx, 1): an empty box pools to 0.
    count = jnp.maximum(grid_y * grid_x, 1).astype(flat.dtype)
    return jnp.sum(samples, axis=(2, 4)) / count[:, None, None, None]


def _check(output_size: int, sampling_ratio: int, max_sampling_ratio: int) -> None:
    if not isinstance(output_size, int) or output_size < 1:
        raise ValueError(f"output_size={output_size!r}: expected a positive int")
    if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, int) or sampling_ratio < 0:
        raise ValueError(f"sampling_ratio={sampling_ratio!r}: expected a positive int, or 0 for adaptive sampling "
                         "(detectron2's default)")
    if isinstance(max_sampling_ratio, bool) or not isinstance(max_sampling_ratio, int) or max_sampling_ratio < 1:
        raise ValueError(f"max_sampling_ratio={max_sampling_ratio!r}: expected a positive int (the most samples per "
                         "bin and axis adaptive sampling lays out)")


def roi_align(
    features: Float[Array, "h w c"],
    boxes: Float[Array, "r 4"],
    *,
    output_size: int,
    sampling_ratio: int,
    spatial_scale: float = 1.0,
    max_sampling_ratio: int = 8,
) -> Float[Array, "r s s c"]:
    """Pool ``boxes`` (image pixels, ``x1 y1 x2 y2``) from one map of stride ``1 / spatial_scale``.

    Equals ``torchvision.ops.roi_align(x, boxes, output_size, spatial_scale, sampling_ratio, aligned=True)``
    (NHWC here, NCHW there); with ``sampling_ratio=0`` for boxes of at most ``max_sampling_ratio * output_size``
    feature pixels a side (see the module docstring).
    """
    _check(output_size, sampling_ratio, max_sampling_ratio)
    h, w, c = features.shape
    r = boxes.shape[0]
    scaled = boxes * spatial_scale - 0.5
    full = lambda v: jnp.full((r,), v, jnp.int32)  # noqa: E731
    return _pool(
        features.reshape(h * w, c), full(0), full(w), full(h),
        scaled[:, 1], scaled[:, 0], scaled[:, 3] - scaled[:, 1], scaled[:, 2] - scaled[:, 0],
        output_size, sampling_ratio, max_sampling_ratio,
    )


def assign_levels(
    boxes: Float[Array, "r 4"], *, num_levels: int, min_level: int, canonical_size: float, canonical_level: int
) -> Int[Array, " r"]:
    """Index (0-based, into the ROI levels) of the pyramid level each box is pooled from:
    ``clip(floor(canonical_level + log2(sqrt(area) / canonical_size + 1e-8)), min_level, min_level + num_levels
    - 1) - min_level``, level ``k`` having stride ``2**k`` (detectron2 ``assign_boxes_to_levels``; ViTDet: 224
    and 4)."""
    sizes = jnp.sqrt(jnp.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 0.0))
    level = jnp.floor(canonical_level + jnp.log2(sizes / canonical_size + 1e-8))
    level = jnp.clip(level, min_level, min_level + num_levels - 1)
    return (level - min_level).astype(jnp.int32)


def multilevel_roi_align(
    levels: Sequence[Float[Array, "_ _ c"]],
    strides: Sequence[int],
    boxes: Float[Array, "r 4"],
    level_index: Int[Array, " r"],
    *,
    output_size: int,
    sampling_ratio: int,
    max_sampling_ratio: int = 8,
) -> Float[Array, "r s s c"]:
    """`roi_align` of each box on ``levels[level_index[i]]`` (stride ``strides[level_index[i]]``)."""
    _check(output_size, sampling_ratio, max_sampling_ratio)
    if len(levels) != len(strides):
        raise ValueError(f"{len(levels)} levels but {len(strides)} strides; expected one stride per level")
    flat = jnp.concatenate([f.reshape(-1, f.shape[-1]) for f in levels], axis=0)
    heights = np.asarray([f.shape[0] for f in levels], np.int32)
    widths = np.asarray([f.shape[1] for f in levels], np.int32)
    offsets = np.concatenate([[0], np.cumsum(heights * widths)[:-1]]).astype(np.int32)
    scales = np.asarray([1.0 / s for s in strides], np.float32)
    scale = jnp.asarray(scales)[level_index]
    scaled = boxes * scale[:, None] - 0.5
    return _pool(
        flat, jnp.asarray(offsets)[level_index], jnp.asarray(widths)[level_index], jnp.asarray(heights)[level_index],
        scaled[:, 1], scaled[:, 0], scaled[:, 3] - scaled[:, 1], scaled[:, 2] - scaled[:, 0],
        output_size, sampling_ratio, max_sampling_ratio,
    )

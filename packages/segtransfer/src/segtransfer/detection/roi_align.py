"""RoIAlign with ``aligned=True`` and a fixed sampling ratio, on one feature map or on a pyramid.

Semantics are torchvision/detectron2 ``ROIAlign(aligned=True)`` (detectron2's ``ROIAlignV2``): a box
``(x1, y1, x2, y2)`` in image pixels is scaled by ``1 / stride`` and shifted by -0.5 (pixel centres sit at
half-integers); each of the ``output_size x output_size`` bins is the mean of ``sampling_ratio x sampling_ratio``
bilinear samples at the bin's regular sub-grid. A sample more than one pixel outside the map (``y < -1`` or
``y > height``) contributes 0; one within that pixel is clamped to the border. Only the sampling ratio is fixed
(detectron2's default of 0 picks ``ceil(roi_size / output_size)`` per box, which has no static shape).

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


def _axis_samples(start, length, size, output_size: int, sampling_ratio: int):
    """Sample positions along one axis for every box, resolved to two neighbours and their weights.

    start/length: [r] box start and length in feature pixels (after the -0.5 shift); size: [r] map length.
    Returns (low [r, n, 2] int32 indices, weights [r, n, 2]) with n = output_size * sampling_ratio; weights are
    zero for samples outside the map (> 1 pixel away).
    """
    n = output_size * sampling_ratio
    # (bin * sr + i + 0.5) / sr bin widths from the start, i.e. the centre of each sub-bin.
    fractions = (np.arange(n, dtype=np.float32) + 0.5) / np.float32(n)
    pos = start[:, None] + fractions[None, :] * length[:, None]
    size_f = size.astype(jnp.float32)[:, None]
    inside = (pos >= -1.0) & (pos <= size_f)
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


def _pool(flat, offsets, widths, heights, starts_y, starts_x, lengths_y, lengths_x, output_size, sampling_ratio):
    y_idx, y_w = _axis_samples(starts_y, lengths_y, heights, output_size, sampling_ratio)
    x_idx, x_w = _axis_samples(starts_x, lengths_x, widths, output_size, sampling_ratio)
    index = (
        offsets[:, None, None, None, None]
        + y_idx[:, :, :, None, None] * widths[:, None, None, None, None]
        + x_idx[:, None, None, :, :]
    )  # [r, ny, 2, nx, 2]
    values = jnp.take(flat, index, axis=0)  # [r, ny, 2, nx, 2, c]
    samples = jnp.einsum("ryaxbc,rya,rxb->ryxc", values, y_w.astype(flat.dtype), x_w.astype(flat.dtype))
    r, ny, nx, c = samples.shape
    samples = samples.reshape(r, output_size, sampling_ratio, output_size, sampling_ratio, c)
    return jnp.mean(samples, axis=(2, 4))


def _check(output_size: int, sampling_ratio: int) -> None:
    if not isinstance(output_size, int) or output_size < 1:
        raise ValueError(f"output_size={output_size!r}: expected a positive int")
    if not isinstance(sampling_ratio, int) or sampling_ratio < 1:
        raise ValueError(
            f"sampling_ratio={sampling_ratio!r}: expected a positive int (adaptive sampling, detectron2's 0, "
            "has no static shape)"
        )


def roi_align(
    features: Float[Array, "h w c"],
    boxes: Float[Array, "r 4"],
    *,
    output_size: int,
    sampling_ratio: int,
    spatial_scale: float = 1.0,
) -> Float[Array, "r s s c"]:
    """Pool ``boxes`` (image pixels, ``x1 y1 x2 y2``) from one map of stride ``1 / spatial_scale``.

    Equals ``torchvision.ops.roi_align(x, boxes, output_size, spatial_scale, sampling_ratio, aligned=True)``
    (NHWC here, NCHW there).
    """
    _check(output_size, sampling_ratio)
    h, w, c = features.shape
    r = boxes.shape[0]
    scaled = boxes * spatial_scale - 0.5
    full = lambda v: jnp.full((r,), v, jnp.int32)  # noqa: E731
    return _pool(
        features.reshape(h * w, c), full(0), full(w), full(h),
        scaled[:, 1], scaled[:, 0], scaled[:, 3] - scaled[:, 1], scaled[:, 2] - scaled[:, 0],
        output_size, sampling_ratio,
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
) -> Float[Array, "r s s c"]:
    """`roi_align` of each box on ``levels[level_index[i]]`` (stride ``strides[level_index[i]]``)."""
    _check(output_size, sampling_ratio)
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
        output_size, sampling_ratio,
    )

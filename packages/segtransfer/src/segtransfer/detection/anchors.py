"""Anchor boxes on a feature pyramid (detectron2 ``DefaultAnchorGenerator``), built once in numpy.

One anchor size per level; ``aspect_ratios`` are height / width. On a level of stride ``s`` and grid ``gh x gw``,
the anchor of size ``z`` and ratio ``r`` at cell ``(y, x)`` is centred at ``((x + offset) s, (y + offset) s)`` with
width ``sqrt(z^2 / r)`` and height ``r * width``. Anchors are ordered level by level, then row-major over cells, then
by ratio: the order of an NHWC head output ``[gh, gw, A]`` flattened, so head outputs and anchors line up by
index.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from jaxtyping import Float32

__all__ = ["cell_anchors", "level_anchors", "pyramid_anchors"]


def cell_anchors(size: float | int, aspect_ratios: Sequence[float | int]) -> Float32[np.ndarray, "a 4"]:
    """Anchors of one size centred at the origin, one per ratio: ``[-w/2, -h/2, w/2, h/2]``."""
    out = []
    for ratio in aspect_ratios:
        if not ratio > 0:
            raise ValueError(f"aspect_ratios={tuple(aspect_ratios)!r}: expected positive ratios")
        w = np.sqrt(size * size / ratio)
        h = ratio * w
        out.append([-w / 2, -h / 2, w / 2, h / 2])
    return np.asarray(out, np.float32)


def level_anchors(
    grid: tuple[int, int], stride: int, size: float | int, aspect_ratios: Sequence[float | int], *,
    offset: float = 0.0,
) -> Float32[np.ndarray, "n 4"]:
    """All anchors of one level: ``gh * gw * len(aspect_ratios)`` boxes, cell-major, ratio-minor."""
    gh, gw = grid
    ys = (np.arange(gh, dtype=np.float64) + offset) * stride
    xs = (np.arange(gw, dtype=np.float64) + offset) * stride
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    shifts = np.stack([xx, yy, xx, yy], axis=-1).reshape(-1, 1, 4)
    base = cell_anchors(size, aspect_ratios).astype(np.float64).reshape(1, -1, 4)
    return (shifts + base).reshape(-1, 4).astype(np.float32)


def pyramid_anchors(
    grids: Sequence[tuple[int, int]],
    strides: Sequence[int],
    sizes: Sequence[float | int],
    aspect_ratios: Sequence[float | int],
    *,
    offset: float = 0.0,
) -> tuple[Float32[np.ndarray, "n 4"], tuple[int, ...]]:
    """Anchors of every level concatenated, and the number of anchors per level.

    Example (the study: a 1024 input, strides 4..64, sizes 32..512, ratios 0.5/1/2)::

        anchors, counts = pyramid_anchors([(256, 256), (128, 128), (64, 64), (32, 32), (16, 16)],
                                          [4, 8, 16, 32, 64], [32, 64, 128, 256, 512], [0.5, 1.0, 2.0])
        counts  # (196608, 49152, 12288, 3072, 768)
    """
    if not len(grids) == len(strides) == len(sizes):
        raise ValueError(
            f"grids, strides and sizes have lengths {len(grids)}, {len(strides)}, {len(sizes)}; expected one "
            "entry per pyramid level each"
        )
    levels = [
        level_anchors(tuple(g), s, z, aspect_ratios, offset=offset)
        for g, s, z in zip(grids, strides, sizes, strict=True)
    ]
    return np.concatenate(levels, axis=0), tuple(len(a) for a in levels)

"""RoIAlign (aligned=True) against a direct bilinear-sampling loop and torchvision; FPN level assignment."""

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from segtransfer.detection import assign_levels, multilevel_roi_align, roi_align
from torchvision import ops


def _bilinear(feature, y, x):
    """torchvision's roi_align bilinear_interpolate, one point, float64."""
    h, w = feature.shape[:2]
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return np.zeros(feature.shape[2])
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= h - 1:
        y0 = y1 = h - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= w - 1:
        x0 = x1 = w - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    hy, hx = 1 - ly, 1 - lx
    return hy * hx * feature[y0, x0] + hy * lx * feature[y0, x1] + ly * hx * feature[y1, x0] + ly * lx * feature[y1, x1]


def _roi_align_loop(feature, box, size, ratio, scale):
    x1, y1, x2, y2 = (float(v) * scale - 0.5 for v in box)
    bin_h, bin_w = (y2 - y1) / size, (x2 - x1) / size
    out = np.zeros((size, size, feature.shape[2]))
    for ph in range(size):
        for pw in range(size):
            acc = np.zeros(feature.shape[2])
            for iy in range(ratio):
                y = y1 + ph * bin_h + (iy + 0.5) * bin_h / ratio
                for ix in range(ratio):
                    x = x1 + pw * bin_w + (ix + 0.5) * bin_w / ratio
                    acc += _bilinear(feature, y, x)
            out[ph, pw] = acc / (ratio * ratio)
    return out


BOXES = np.asarray(
    [
        [1.0, 2.0, 9.0, 7.0],
        [0.0, 0.0, 16.0, 12.0],  # the whole map
        [-6.0, -3.0, 4.0, 5.0],  # partly outside (samples beyond -1 give 0)
        [10.2, 3.3, 10.9, 4.1],  # smaller than a pixel
        [14.0, 10.0, 40.0, 30.0],  # mostly outside bottom-right (clamped to the border, then 0)
    ],
    np.float32,
)


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_roi_align_matches_the_sampling_loop(scale):
    rng = np.random.default_rng(0)
    shape = (12, 16, 3) if scale == 1.0 else (6, 8, 3)
    feature = rng.normal(size=shape).astype(np.float32)
    got = np.asarray(roi_align(jnp.asarray(feature), jnp.asarray(BOXES), output_size=3, sampling_ratio=2,
                               spatial_scale=scale))
    for box, out in zip(BOXES, got, strict=True):
        np.testing.assert_allclose(out, _roi_align_loop(feature.astype(np.float64), box, 3, 2, scale), atol=1e-5)


def test_roi_align_matches_torchvision():
    rng = np.random.default_rng(1)
    feature = rng.normal(size=(12, 16, 4)).astype(np.float32)
    expected = ops.roi_align(
        torch.from_numpy(feature.transpose(2, 0, 1)[None].copy()),
        [torch.from_numpy(BOXES * 2)], output_size=7, spatial_scale=0.5, sampling_ratio=2, aligned=True,
    ).numpy().transpose(0, 2, 3, 1)
    got = roi_align(jnp.asarray(feature), jnp.asarray(BOXES) * 2, output_size=7, sampling_ratio=2, spatial_scale=0.5)
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5)


def test_multilevel_pools_each_box_from_its_level():
    rng = np.random.default_rng(2)
    levels = [rng.normal(size=(16, 16, 2)).astype(np.float32), rng.normal(size=(8, 8, 2)).astype(np.float32)]
    boxes = jnp.asarray(BOXES)
    which = jnp.asarray([0, 1, 1, 0, 1], jnp.int32)
    got = multilevel_roi_align([jnp.asarray(v) for v in levels], (4, 8), boxes, which, output_size=2, sampling_ratio=2)
    for i, level in enumerate(np.asarray(which)):
        single = roi_align(jnp.asarray(levels[level]), boxes[i : i + 1], output_size=2, sampling_ratio=2,
                           spatial_scale=1.0 / (4, 8)[level])
        np.testing.assert_allclose(np.asarray(got[i]), np.asarray(single[0]), atol=1e-6)
    with pytest.raises(ValueError, match="sampling_ratio=-1"):
        roi_align(jnp.asarray(levels[0]), boxes, output_size=2, sampling_ratio=-1)
    with pytest.raises(ValueError, match="max_sampling_ratio=0"):
        roi_align(jnp.asarray(levels[0]), boxes, output_size=2, sampling_ratio=0, max_sampling_ratio=0)


# Boxes from 0 to 22 feature pixels a side (one of zero width: torchvision pools it to 0), so adaptive sampling
# uses 0 to 4 samples per bin and axis at output 7 (scale 0.5 below), each axis on its own.
ADAPTIVE_BOXES = np.asarray([[1.0, 2.0, 29.0, 13.0], [0.0, 0.0, 44.0, 40.0], [10.3, 4.1, 10.3, 20.0],
                             [3.0, 5.5, 9.0, 7.0], [-6.0, -4.0, 30.0, 14.0], [20.0, 1.0, 31.5, 23.9]], np.float32)


def test_adaptive_sampling_matches_torchvision():
    rng = np.random.default_rng(3)
    feature = rng.normal(size=(12, 16, 4)).astype(np.float32)
    expected = ops.roi_align(
        torch.from_numpy(feature.transpose(2, 0, 1)[None].copy()),
        [torch.from_numpy(ADAPTIVE_BOXES)], output_size=7, spatial_scale=0.5, sampling_ratio=0, aligned=True,
    ).numpy().transpose(0, 2, 3, 1)
    got = roi_align(jnp.asarray(feature), jnp.asarray(ADAPTIVE_BOXES), output_size=7, sampling_ratio=0,
                    spatial_scale=0.5, max_sampling_ratio=4)
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5)
    # Not the fixed 2x2 grid: the larger boxes take more samples per bin.
    fixed = roi_align(jnp.asarray(feature), jnp.asarray(ADAPTIVE_BOXES), output_size=7, sampling_ratio=2,
                      spatial_scale=0.5)
    assert not np.allclose(np.asarray(fixed), expected, atol=1e-3)
    # Per level of a pyramid, the same.
    levels = [jnp.asarray(feature), jnp.asarray(rng.normal(size=(6, 8, 4)).astype(np.float32))]
    which = jnp.asarray([0, 1, 0, 1, 0, 1], jnp.int32)
    multi = multilevel_roi_align(levels, (2, 4), jnp.asarray(ADAPTIVE_BOXES), which, output_size=7, sampling_ratio=0,
                                 max_sampling_ratio=4)
    for i, level in enumerate(np.asarray(which)):
        want = ops.roi_align(torch.from_numpy(np.asarray(levels[level]).transpose(2, 0, 1)[None].copy()),
                             [torch.from_numpy(ADAPTIVE_BOXES[i : i + 1])], output_size=7,
                             spatial_scale=1.0 / (2, 4)[level], sampling_ratio=0, aligned=True)
        np.testing.assert_allclose(np.asarray(multi[i]), want.numpy()[0].transpose(1, 2, 0), atol=1e-5)


def test_level_assignment_is_fpn_equation_1():
    # sqrt(area) 224 -> level 4 (stride 16); 112 -> 3; 448 -> 5; 10 -> clamped to 2; 2000 -> clamped to 5
    sides = np.asarray([224.0, 112.0, 448.0, 10.0, 2000.0, 223.0], np.float32)
    boxes = jnp.asarray(np.stack([np.zeros(6), np.zeros(6), sides, sides], -1).astype(np.float32))
    level = assign_levels(boxes, num_levels=4, min_level=2, canonical_size=224.0, canonical_level=4)
    assert np.asarray(level).tolist() == [2, 1, 3, 0, 3, 1]

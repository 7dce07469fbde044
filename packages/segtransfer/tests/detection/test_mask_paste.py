"""Mask pasting against torch's grid_sample (detectron2's implementation) and a direct loop."""

import numpy as np
import pytest
import torch
from segtransfer.detection import paste_masks


def _paste_loop(mask, box, height, width):
    s = mask.shape[0]
    x1, y1, x2, y2 = box
    out = np.zeros((height, width))
    for y in range(height):
        v = (y + 0.5 - y1) / (y2 - y1) * s - 0.5
        for x in range(width):
            u = (x + 0.5 - x1) / (x2 - x1) * s - 0.5
            total = 0.0
            for yy, wy in ((np.floor(v), 1 - (v - np.floor(v))), (np.floor(v) + 1, v - np.floor(v))):
                for xx, wx in ((np.floor(u), 1 - (u - np.floor(u))), (np.floor(u) + 1, u - np.floor(u))):
                    if 0 <= yy < s and 0 <= xx < s:
                        total += wy * wx * mask[int(yy), int(xx)]
            out[y, x] = total
    return out >= 0.5


def test_paste_matches_loop_and_grid_sample():
    rng = np.random.default_rng(0)
    masks = rng.uniform(0, 1, (3, 6, 6))
    boxes = np.asarray([[2.3, 1.7, 15.2, 9.9], [-3.0, 4.0, 8.0, 30.0], [10.0, 10.0, 11.0, 10.5]])
    got = paste_masks(masks, boxes, 14, 18)
    for i in range(3):
        np.testing.assert_array_equal(got[i], _paste_loop(masks[i], boxes[i], 14, 18))
    for i, (x1, y1, x2, y2) in enumerate(boxes):  # detectron2 _do_paste_mask over the whole image
        ys = (np.arange(14) + 0.5 - y1) / (y2 - y1) * 2 - 1
        xs = (np.arange(18) + 0.5 - x1) / (x2 - x1) * 2 - 1
        grid = np.stack(np.broadcast_arrays(xs[None, :], ys[:, None]), -1)[None]
        sampled = torch.nn.functional.grid_sample(
            torch.from_numpy(masks[i][None, None]), torch.from_numpy(grid), align_corners=False
        )[0, 0].numpy()
        np.testing.assert_array_equal(got[i], sampled >= 0.5)


def test_a_full_mask_fills_its_box():
    got = paste_masks(np.ones((1, 28, 28)), np.asarray([[4.0, 2.0, 12.0, 9.0]]), 16, 16)[0]
    expected = np.zeros((16, 16), bool)
    expected[2:9, 4:12] = True  # pixel centres inside the box; edge pixels read >= 0.5 of the border cell
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match=r"masks \(1, 28, 27\), boxes \(1, 4\): expected \[n, s, s\]"):
        paste_masks(np.ones((1, 28, 27)), np.zeros((1, 4)), 4, 4)

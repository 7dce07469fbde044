"""ROI sampling (ground truth appended, 25% foreground) and box-relative mask targets vs full-image RoIAlign."""

import jax.numpy as jnp
import jax.random as jr
import numpy as np
from PIL import Image
from segtransfer.detection import ROIConfig, decode_boxes, mask_targets, pairwise_iou, roi_align, sample_rois

CONFIG = ROIConfig(batch_per_image=32, positive_fraction=0.25)


def test_sample_rois_appends_ground_truth_and_labels_by_iou():
    rng = np.random.default_rng(0)
    gt = np.asarray([[10, 10, 30, 40], [50, 20, 90, 60], [0, 0, 0, 0]], np.float32)
    gt_classes, gt_valid = np.asarray([3, 1, -1], np.int32), np.asarray([True, True, False])
    centres = rng.uniform(0, 100, (60, 2))
    sizes = rng.uniform(5, 40, (60, 2))
    proposals = np.concatenate([centres - sizes / 2, centres + sizes / 2], 1).astype(np.float32)
    proposals[:6] = gt[[0, 0, 1, 1, 0, 1]] + rng.uniform(-2, 2, (6, 4)).astype(np.float32)  # near-duplicates
    valid = np.ones(60, bool)
    valid[-5:] = False
    s = sample_rois(jnp.asarray(proposals), jnp.asarray(valid), jnp.asarray(gt), jnp.asarray(gt_classes),
                    jnp.asarray(gt_valid), CONFIG, num_classes=5, key=jr.key(0))
    boxes, classes, fg, ok = (np.asarray(x) for x in (s.boxes, s.classes, s.foreground, s.valid))
    candidates = np.concatenate([proposals, gt])
    iou = np.asarray(pairwise_iou(jnp.asarray(boxes), jnp.asarray(gt)))[:, :2]
    assert ok.all() and fg.sum() == 8  # 6 near-duplicates + 2 ground truths >= 0.5, capped at 32 * 0.25 = 8
    assert fg[:8].all() and not fg[8:].any()  # foreground first
    np.testing.assert_array_equal(iou.max(1) >= 0.5, fg)
    np.testing.assert_array_equal(classes, np.where(fg, gt_classes[iou.argmax(1)], 5))
    assert any(np.allclose(b, gt[0]) for b in boxes[fg]) and any(np.allclose(b, gt[1]) for b in boxes[fg])
    assert all(any(np.array_equal(b, c) for c in candidates[np.r_[valid, gt_valid]]) for b in boxes)
    decoded = np.asarray(decode_boxes(s.deltas, s.boxes, CONFIG.box_weights))
    np.testing.assert_allclose(decoded[fg], gt[iou.argmax(1)][fg], atol=1e-3)  # box targets reach the object


def test_sample_rois_without_objects_is_all_background():
    proposals = jnp.asarray(np.tile([[0.0, 0.0, 10.0, 10.0]], (40, 1)).astype(np.float32))
    s = sample_rois(proposals, jnp.ones(40, bool), jnp.zeros((3, 4)), jnp.full(3, -1, jnp.int32),
                    jnp.zeros(3, bool), CONFIG, num_classes=5, key=jr.key(1))
    assert not np.asarray(s.foreground).any() and (np.asarray(s.classes) == 5).all() and np.asarray(s.valid).all()


def _box_relative(mask, box, size):
    """The pipeline's representation: the box's region, area-averaged to size x size (PIL box filter)."""
    image = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(image.resize((size, size), Image.Resampling.BOX, box=tuple(float(v) for v in box)))


ROIS = np.asarray([[14, 20, 34, 36], [10, 18, 30, 40], [20.5, 25.2, 33.1, 35.7], [5, 5, 60, 60]], np.float32)


def _reference(full):
    """detectron2's target: RoIAlign (aligned, 2x2 samples) of the full-image bitmask, before the 0.5 cut."""
    return np.asarray(roi_align(jnp.asarray(full[..., None]), jnp.asarray(ROIS), output_size=28,
                                sampling_ratio=2))[..., 0]


def test_mask_targets_equal_roi_align_of_the_full_mask():
    # A grid the size of the box is lossless: targets equal detectron2's exactly (any mask, here noise).
    rng = np.random.default_rng(2)
    full = np.zeros((64, 64), np.float32)
    full[20:36, 14:30] = rng.uniform(0, 1, (16, 16)) > 0.4
    box = np.asarray([14, 20, 30, 36], np.float32)
    targets = mask_targets(jnp.asarray(_box_relative(full, box, 16)[None]), jnp.asarray(box[None]),
                           jnp.asarray(ROIS), jnp.zeros(4, jnp.int32), size=28)
    reference = _reference(full)
    decided = np.abs(reference - 0.5) > 1e-4  # exactly 0.5 may round either way
    np.testing.assert_array_equal(np.asarray(targets)[decided], (reference >= 0.5)[decided])
    assert decided.mean() > 0.9


def test_mask_targets_from_a_resampled_grid_agree_on_smooth_masks():
    yy, xx = np.mgrid[0:64, 0:64] + 0.5
    full = (((xx - 24) / 10) ** 2 + ((yy - 28) / 8) ** 2 <= 1).astype(np.float32)  # ellipse in [14, 34] x [20, 36]
    box = np.asarray([14, 20, 34, 36], np.float32)
    for grid in (8, 20, 56):  # down- and up-sampled box-relative grids
        targets = mask_targets(jnp.asarray(_box_relative(full, box, grid)[None]), jnp.asarray(box[None]),
                               jnp.asarray(ROIS), jnp.zeros(4, jnp.int32), size=28)
        agree = (np.asarray(targets) == (_reference(full) >= 0.5)).mean()
        assert agree > (0.95 if grid == 8 else 0.98), (grid, agree)

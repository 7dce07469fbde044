"""Boxes, anchors and NMS against float64 numpy re-derivations."""

import jax.numpy as jnp
import numpy as np
import pytest
from segtransfer.detection import (
    cell_anchors,
    clip_boxes,
    decode_boxes,
    encode_boxes,
    nms,
    pairwise_iou,
    pyramid_anchors,
)

WEIGHTS = (10.0, 10.0, 5.0, 5.0)


def _random_boxes(rng, n, size=100.0, min_side=1.0):
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(min_side, size / 2, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


def _iou_loop(a, b):
    out = np.zeros((len(a), len(b)))
    for i, p in enumerate(a.astype(np.float64)):
        for j, q in enumerate(b.astype(np.float64)):
            iw = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
            ih = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
            inter = iw * ih
            union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter
            out[i, j] = inter / union if union > 0 else 0.0
    return out


def test_iou_matrix_matches_a_loop():
    rng = np.random.default_rng(0)
    a, b = _random_boxes(rng, 7), _random_boxes(rng, 5)
    b[0] = a[0]  # identical -> 1
    b[1] = [200, 200, 210, 210]  # disjoint -> 0
    b[2] = [3, 3, 3, 9]  # zero width, union > 0 only through the other box
    got = np.asarray(pairwise_iou(jnp.asarray(a), jnp.asarray(b)))
    np.testing.assert_allclose(got, _iou_loop(a, b), rtol=1e-5, atol=1e-7)
    assert got[0, 0] == pytest.approx(1.0) and (got[:, 1] == 0).all()
    empty = np.zeros((1, 4), np.float32)
    assert float(pairwise_iou(jnp.asarray(empty), jnp.asarray(empty))[0, 0]) == 0.0  # 0/0 -> 0, not NaN


def test_encode_matches_rcnn_formula_and_decode_inverts_it():
    rng = np.random.default_rng(1)
    src, dst = _random_boxes(rng, 50), _random_boxes(rng, 50)
    s, d = src.astype(np.float64), dst.astype(np.float64)
    sw, sh = s[:, 2] - s[:, 0], s[:, 3] - s[:, 1]
    dw, dh = d[:, 2] - d[:, 0], d[:, 3] - d[:, 1]
    expected = np.stack(
        [
            10 * ((d[:, 0] + dw / 2) - (s[:, 0] + sw / 2)) / sw,
            10 * ((d[:, 1] + dh / 2) - (s[:, 1] + sh / 2)) / sh,
            5 * np.log(dw / sw),
            5 * np.log(dh / sh),
        ],
        -1,
    )
    deltas = encode_boxes(jnp.asarray(src), jnp.asarray(dst), WEIGHTS)
    np.testing.assert_allclose(np.asarray(deltas), expected, rtol=1e-4, atol=1e-4)
    back = decode_boxes(deltas, jnp.asarray(src), WEIGHTS)
    np.testing.assert_allclose(np.asarray(back), dst, rtol=1e-4, atol=1e-3)


def test_decode_clamps_the_log_scale():
    box = jnp.asarray([[0.0, 0.0, 16.0, 16.0]])
    out = decode_boxes(jnp.asarray([[0.0, 0.0, 1e4, 1e4]]), box, (1.0, 1.0, 1.0, 1.0))
    # exp(log(1000 / 16)) * 16 = 1000: the clamp keeps huge deltas finite
    np.testing.assert_allclose(np.asarray(out[0, 2] - out[0, 0]), 1000.0, rtol=1e-5)


def test_clip_boxes():
    boxes = jnp.asarray([[-5.0, 2.0, 70.0, 90.0]])
    np.testing.assert_array_equal(np.asarray(clip_boxes(boxes, 50, 64)), [[0.0, 2.0, 64.0, 50.0]])


def test_anchors_follow_detectron2():
    # size 32, ratio 0.5 (h / w): w = sqrt(1024 / 0.5) = 45.25, h = 22.63
    cell = cell_anchors(32, (0.5, 1.0, 2.0))
    w = np.sqrt(32 * 32 / 0.5)
    np.testing.assert_allclose(cell[0], [-w / 2, -w / 4, w / 2, w / 4], rtol=1e-6)
    np.testing.assert_allclose(cell[1], [-16, -16, 16, 16])
    areas = (cell[:, 2] - cell[:, 0]) * (cell[:, 3] - cell[:, 1])
    np.testing.assert_allclose(areas, 1024, rtol=1e-5)
    anchors, counts = pyramid_anchors([(2, 3), (1, 2)], [4, 8], [32, 64], [0.5, 1.0, 2.0])
    assert counts == (18, 6) and anchors.shape == (24, 4)
    # level 0, cell (row 1, column 2), ratio 1.0 -> index (1 * 3 + 2) * 3 + 1, centre (2 * 4, 1 * 4)
    np.testing.assert_allclose(anchors[(1 * 3 + 2) * 3 + 1], [8 - 16, 4 - 16, 8 + 16, 4 + 16])
    np.testing.assert_allclose(anchors[18 + 3 + 1], [8 - 32, -32, 8 + 32, 32])  # level 1, cell (0, 1)
    _, study = pyramid_anchors(
        [(256, 256), (128, 128), (64, 64), (32, 32), (16, 16)], [4, 8, 16, 32, 64],
        [32, 64, 128, 256, 512], [0.5, 1.0, 2.0],
    )
    assert study == (196608, 49152, 12288, 3072, 768)


def _greedy_nms(boxes, scores, valid, threshold, classes=None):
    order = [i for i in np.argsort(-scores, kind="stable") if valid[i]]
    kept = []
    for i in order:
        if all(
            _iou_loop(boxes[i : i + 1], boxes[j : j + 1])[0, 0] <= threshold
            or (classes is not None and classes[i] != classes[j])
            for j in kept
        ):
            kept.append(i)
    return kept


@pytest.mark.parametrize("seed", range(4))
def test_nms_equals_greedy_reference(seed):
    rng = np.random.default_rng(seed)
    n = 60
    boxes = _random_boxes(rng, n, size=60.0, min_side=5.0)
    scores = rng.uniform(0, 1, n).astype(np.float32)
    scores[5] = scores[6]  # a tie: input order decides
    valid = rng.uniform(0, 1, n) > 0.15
    classes = rng.integers(0, 3, n).astype(np.int32)
    for threshold in (0.3, 0.5, 0.7):
        for cls in (None, classes):
            expected = _greedy_nms(boxes, scores, valid, threshold, cls)
            idx, kept = nms(
                jnp.asarray(boxes), jnp.asarray(scores), jnp.asarray(valid), iou_threshold=threshold,
                max_output=n, classes=None if cls is None else jnp.asarray(cls),
            )
            idx, kept = np.asarray(idx), np.asarray(kept)
            assert idx[kept].tolist() == expected
            assert kept.sum() == len(expected) and not kept[len(expected) :].any()
    idx, kept = nms(jnp.asarray(boxes), jnp.asarray(scores), jnp.asarray(valid), iou_threshold=0.5, max_output=4)
    assert np.asarray(idx).tolist() == _greedy_nms(boxes, scores, valid, 0.5)[:4] and np.asarray(kept).all()


def test_nms_threshold_is_strict_and_checks_arguments():
    boxes = jnp.asarray([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 5.0]])  # IoU exactly 0.5
    idx, kept = nms(boxes, jnp.asarray([0.9, 0.8]), jnp.ones(2, bool), iou_threshold=0.5, max_output=2)
    assert np.asarray(kept).all()
    with pytest.raises(ValueError, match="max_output=0"):
        nms(boxes, jnp.asarray([0.9, 0.8]), jnp.ones(2, bool), iou_threshold=0.5, max_output=0)

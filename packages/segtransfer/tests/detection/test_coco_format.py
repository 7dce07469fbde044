"""COCO results: boxes and pasted masks mapped back to the original image size."""

import numpy as np
from pycocotools import mask as mask_utils
from segtransfer.detection import Detections, coco_results


def test_results_are_in_original_pixels():
    boxes = np.zeros((2, 3, 4), np.float32)
    boxes[0, 0] = [10, 4, 30, 20]  # input pixels; the image was resized 2x (24x32 -> 48x64)
    boxes[0, 1] = [60, 40, 70, 60]  # leaves the image after scaling back: clipped to 32 x 24
    detections = Detections(
        boxes=boxes,
        scores=np.asarray([[0.9, 0.5, 0.0], [0.0, 0.0, 0.0]], np.float32),
        classes=np.asarray([[1, 0, -1], [-1, -1, -1]], np.int32),
        masks=np.ones((2, 3, 28, 28), np.float32),
        valid=np.asarray([[True, True, False], [False, False, False]]),
        exact=np.ones(2, bool),
    )
    results = coco_results(detections, [7, 8], np.asarray([[48, 64], [48, 64]]), np.asarray([[24, 32], [24, 32]]),
                           [5, 9])
    assert len(results) == 2 and {r["image_id"] for r in results} == {7}  # image 8 has no detections
    first, second = results
    assert first["category_id"] == 9 and second["category_id"] == 5 and first["score"] == np.float32(0.9)
    np.testing.assert_allclose(first["bbox"], [5, 2, 10, 8])  # x, y, w, h at half scale
    np.testing.assert_allclose(second["bbox"], [30, 20, 2, 4])  # (30, 20)-(35, 30) clipped to (32, 24)
    mask = mask_utils.decode(first["segmentation"])
    expected = np.zeros((24, 32), np.uint8)
    expected[2:10, 5:15] = 1  # a full mask covers exactly its box's pixels
    np.testing.assert_array_equal(mask, expected)
    assert first["segmentation"]["size"] == [24, 32] and isinstance(first["segmentation"]["counts"], str)

"""COCO evaluation: perfect detections, a hand-computed AP, equality with direct pycocotools, all images counted."""

import contextlib
import io
import math

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from segtransfer.detection import coco_evaluate


def _rle(h, w, box):
    m = np.zeros((h, w), np.uint8)
    x, y, bw, bh = box
    m[y : y + bh, x : x + bw] = 1
    rle = mask_utils.encode(np.asfortranarray(m))
    return {"size": [h, w], "counts": rle["counts"].decode("ascii")}


def _ground_truth():
    images = [{"id": i, "height": 100, "width": 120} for i in (1, 2, 3)]  # image 3 has no objects
    boxes = {1: [(10, 10, 20, 30, 1), (50, 40, 40, 40, 2)], 2: [(5, 5, 60, 50, 1)]}
    annotations = []
    for image_id, objects in boxes.items():
        for x, y, w, h, cat in objects:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": cat,
                                "bbox": [x, y, w, h], "area": float(w * h), "iscrowd": 0,
                                "segmentation": _rle(100, 120, (x, y, w, h))})
    return {"images": images, "annotations": annotations, "categories": [{"id": 1}, {"id": 2}]}


def _as_results(gt, scores=None):
    return [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": list(a["bbox"]),
         "score": 0.9 if scores is None else scores[i], "segmentation": a["segmentation"]}
        for i, a in enumerate(gt["annotations"])
    ]


def test_ground_truth_as_detections_scores_100():
    gt = _ground_truth()
    metrics = coco_evaluate(gt, _as_results(gt))
    for iou_type in ("bbox", "segm"):
        assert metrics[iou_type]["AP"] == pytest.approx(100.0)
        for name in ("AP50", "AP75", "APs", "APm"):
            assert metrics[iou_type][name] == pytest.approx(100.0)
        assert math.isnan(metrics[iou_type]["APl"])  # no large objects (> 96^2) in the ground truth


def test_hand_built_case_has_known_ap():
    # One class, two objects on image 1: the best detection hits object 1 exactly, the second is a false positive
    # elsewhere, object 2 is missed. Precision 1 up to recall 0.5 and nothing beyond: COCO's 101-point
    # interpolation gives 51/101 at every IoU threshold.
    gt = {"images": [{"id": 1, "height": 100, "width": 100}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "area": 1600.0,
                           "iscrowd": 0},
                          {"id": 2, "image_id": 1, "category_id": 1, "bbox": [60, 60, 30, 30], "area": 900.0,
                           "iscrowd": 0}],
          "categories": [{"id": 1}]}
    results = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.9},
               {"image_id": 1, "category_id": 1, "bbox": [0, 70, 5, 5], "score": 0.8}]
    metrics = coco_evaluate(gt, results, iou_types=("bbox",))["bbox"]
    assert metrics["AP"] == pytest.approx(100 * 51 / 101) and metrics["AP50"] == pytest.approx(100 * 51 / 101)
    # reversed scores: the false positive ranks first, precision at recall 0.5 is 1/2 -> 0.5 * 51/101
    results[0]["score"], results[1]["score"] = 0.7, 0.8
    metrics = coco_evaluate(gt, results, iou_types=("bbox",))["bbox"]
    assert metrics["AP"] == pytest.approx(100 * 0.5 * 51 / 101)


def test_wrapper_equals_pycocotools_and_counts_every_image():
    gt = _ground_truth()
    rng = np.random.default_rng(0)
    results = []
    for image_id in (1, 2):  # nothing on image 3; a false positive on image 3 below
        for _ in range(6):
            x, y = rng.uniform(0, 70, 2)
            w, h = rng.uniform(5, 45, 2)
            results.append({"image_id": image_id, "category_id": int(rng.integers(1, 3)),
                            "bbox": [float(x), float(y), float(w), float(h)], "score": float(rng.uniform())})
    results += _as_results(gt, scores=[0.5, 0.6, 0.7])
    results.append({"image_id": 3, "category_id": 1, "bbox": [1.0, 1.0, 30.0, 30.0], "score": 0.95})
    ours = coco_evaluate(gt, results, iou_types=("bbox",))["bbox"]
    coco = COCO()
    coco.dataset = gt
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
        evaluator = COCOeval(coco, coco.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    expected = [100 * v for v in evaluator.stats[:6]]
    got = [ours[k] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")]
    np.testing.assert_allclose(np.nan_to_num(got, nan=-100.0), expected, rtol=1e-12)
    # the false positive on the object-free image 3 lowers AP: it would not if only images with ground truth,
    # or only images with detections, were evaluated
    without_fp = coco_evaluate(gt, results[:-1], iou_types=("bbox",))["bbox"]
    assert without_fp["AP"] > ours["AP"]


def test_empty_results_and_unknown_images():
    gt = _ground_truth()
    assert coco_evaluate(gt, [])["segm"]["AP"] == 0.0
    with pytest.raises(ValueError, match=r"image ids \[7\] that are not in the ground truth"):
        coco_evaluate(gt, [{"image_id": 7, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1.0}])


def test_a_ground_truth_without_objects_has_no_ap_rather_than_zero():
    gt = _ground_truth()
    crowd_only = {**gt, "annotations": [{**a, "iscrowd": 1} for a in gt["annotations"]]}
    for degenerate in ({**gt, "annotations": []}, crowd_only):
        for results in ([], _as_results(gt)):
            with pytest.raises(ValueError, match=r"the ground truth of 3 images holds no \(non-crowd\) object, so "
                                                 "AP is undefined"):
                coco_evaluate(degenerate, results)

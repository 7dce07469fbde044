"""Box and mask AP with pycocotools' ``COCOeval`` over every image of the split.

``params.imgIds`` is set to all ground-truth images, so images without detections count (their objects are
missed) and detections on images without objects count as false positives. For mask AP the results' ``bbox`` is
removed first, so pycocotools takes each detection's area from its mask (detectron2 does the same; otherwise
small/medium/large would use box areas). Numbers are in percent; pycocotools' -1 (no ground truth in an area
range) becomes NaN. With no detections at all every AP is 0 (pycocotools cannot load an empty result list). A
ground truth without any non-crowd object (e.g. a split whose boxes were all degenerate) has no AP at all: a
ValueError, never an AP of 0 reported as a score.
"""

from __future__ import annotations

import contextlib
import copy
import io

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

__all__ = ["coco_evaluate", "AP_NAMES"]

AP_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def _coco(dataset: dict) -> COCO:
    coco = COCO()
    coco.dataset = copy.deepcopy(dataset)
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def coco_evaluate(
    ground_truth: dict, results: list[dict], *, iou_types: tuple[str, ...] = ("bbox", "segm")
) -> dict[str, dict[str, float]]:
    """``{"bbox": {"AP", "AP50", "AP75", "APs", "APm", "APl"}, "segm": {...}}`` in percent.

    ``ground_truth``: a COCO instances dict (`coco_ground_truth`); ``results``: COCO result dicts
    (`coco_results`) for images of that split.
    """
    for iou_type in iou_types:
        if iou_type not in ("bbox", "segm"):
            raise ValueError(f"iou_types={iou_types!r}: expected 'bbox' and/or 'segm'")
    objects = [a for a in ground_truth.get("annotations", []) if not a.get("iscrowd", 0)]
    if not objects:
        raise ValueError(f"the ground truth of {len(ground_truth.get('images', []))} images holds no (non-crowd) "
                         "object, so AP is undefined; evaluate on a split with objects")
    gt = _coco(ground_truth)
    image_ids = sorted(gt.getImgIds())
    unknown = sorted({r["image_id"] for r in results} - set(image_ids))
    if unknown:
        raise ValueError(f"results name image ids {unknown[:5]} that are not in the ground truth")
    out = {}
    for iou_type in iou_types:
        if not results:
            out[iou_type] = {name: 0.0 for name in AP_NAMES}
            continue
        own = copy.deepcopy(results)
        if iou_type == "segm":
            for r in own:
                r.pop("bbox", None)
        with contextlib.redirect_stdout(io.StringIO()):
            dt = gt.loadRes(own)
            evaluator = COCOeval(gt, dt, iou_type)
            evaluator.params.imgIds = image_ids
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        stats = evaluator.stats[: len(AP_NAMES)]
        pairs = zip(AP_NAMES, stats, strict=True)
        out[iou_type] = {name: float("nan") if value < 0 else float(value) * 100.0 for name, value in pairs}
    return out



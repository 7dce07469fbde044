"""Detections in COCO result format: boxes and RLE masks mapped back to each original image.

One dict per detection: ``{"image_id", "category_id", "bbox": [x, y, w, h], "score", "segmentation": {"size":
[h, w], "counts": str}}`` in original-image pixels (pycocotools ``loadRes`` input; detectron2's
``instances_to_coco_json``). Boxes are scaled per axis by original / resized size, clipped to the original image,
and empty ones dropped (detectron2 ``detector_postprocess``); masks are pasted at the original size
(`paste_masks`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pycocotools import mask as mask_utils

from .mask_paste import paste_masks

__all__ = ["coco_results"]


def coco_results(
    detections,
    image_ids: Sequence[int] | np.ndarray,
    image_hw: np.ndarray,
    original_hw: np.ndarray,
    category_ids: Sequence[int],
) -> list[dict]:
    """COCO results for a batch of `Detections` (numpy or device arrays; host-side).

    ``image_hw``: [b, 2] unpadded input size the boxes refer to; ``original_hw``: [b, 2] original image size;
    ``category_ids[c]``: the dataset's id of class ``c``.
    """
    boxes, scores, classes = (np.asarray(x) for x in (detections.boxes, detections.scores, detections.classes))
    masks, valid = np.asarray(detections.masks), np.asarray(detections.valid)
    results = []
    for i in range(boxes.shape[0]):
        (h, w), (oh, ow) = (int(v) for v in image_hw[i]), (int(v) for v in original_hw[i])
        keep = np.nonzero(valid[i])[0]
        scale = np.asarray([ow / w, oh / h, ow / w, oh / h], np.float64)
        b = np.clip(boxes[i, keep].astype(np.float64) * scale, 0.0, [ow, oh, ow, oh])
        nonempty = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        keep, b = keep[nonempty], b[nonempty]
        pasted = paste_masks(masks[i, keep], b, oh, ow)
        for j, box, mask in zip(keep, b, pasted, strict=True):
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            results.append(
                {
                    "image_id": int(image_ids[i]),
                    "category_id": int(category_ids[int(classes[i, j])]),
                    "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])],
                    "score": float(scores[i, j]),
                    "segmentation": {"size": [oh, ow], "counts": rle["counts"].decode("ascii")},
                }
            )
    return results

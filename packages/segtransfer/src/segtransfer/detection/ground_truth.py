"""COCO-format ground truth of a whole split, built from the same TFDS records the pipeline reads.

`coco_ground_truth` gives ``{"images", "annotations", "categories"}`` with every image of the split (images
without objects included: COCOeval then counts their false positives), boxes ``[x, y, w, h]`` in original pixels,
RLE masks at the original size, ``area`` (the record's ``objects/area`` when present, COCO's polygon area; else
the mask's pixel count) and ``iscrowd``. Image ids are `image_id_of` (``image/id`` or the record index), the ids
`segtransfer.detection.data` puts in each batch. Category ids: the builder's ``coco_category_ids`` metadata when
present (COCO), else ``label + 1``.
"""

from __future__ import annotations

import io

import numpy as np
from flopdata import RecordSource, label_names, open_builder, parse_example
from PIL import Image
from pycocotools import mask as mask_utils

from .data import decode_object_masks, image_id_of

__all__ = ["coco_ground_truth", "category_ids"]


def category_ids(directory: str) -> list[int]:
    """The dataset id of each contiguous class (see the module docstring)."""
    ids = (open_builder(directory).info.metadata or {}).get("coco_category_ids")
    if ids is not None:
        return [int(i) for i in ids]
    return [label + 1 for label in range(len(label_names(directory, feature="objects/label")))]


def _image_size(encoded: bytes, where: str) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(encoded)) as image:
            return image.height, image.width
    except OSError as error:
        raise ValueError(f"corrupt image in {where}: {error}") from error


def coco_ground_truth(directory: str, split: str) -> dict:
    """The split's annotations as a COCO instances dict (see the module docstring)."""
    source = RecordSource(directory, split)
    ids = category_ids(directory)
    images, annotations = [], []
    for index in range(len(source)):
        where = source.describe(index)
        fields = parse_example(source[index]["record"], where=where)
        h, w = _image_size(fields["image"][0], where)
        image_id = image_id_of(fields, index)
        images.append({"id": image_id, "height": h, "width": w})
        labels = fields.get("objects/label", [])
        boxes = np.asarray(fields.get("objects/bbox", []), np.float64).reshape(-1, 4) * [h, w, h, w]
        boxes = np.clip(boxes, 0.0, [h, w, h, w])
        crowd = fields.get("objects/is_crowd", [0] * len(labels))
        areas = fields.get("objects/area", [])
        encoded = fields.get("objects/mask", [])
        png = [i for i, item in enumerate(encoded) if item[:4] == b"\x89PNG"]
        decoded = decode_object_masks(fields, len(labels), h, w, where) if png else None
        for i, label in enumerate(labels):
            ymin, xmin, ymax, xmax = boxes[i]
            if i < len(encoded) and decoded is None:
                rle = {"size": [h, w], "counts": encoded[i].decode("ascii")}
            elif decoded is not None:
                rle = mask_utils.encode(np.asfortranarray(decoded[i]))
                rle = {"size": [h, w], "counts": rle["counts"].decode("ascii")}
            else:
                rle = None
            area = float(areas[i]) if i < len(areas) else (
                float(mask_utils.area(rle)) if rle is not None else float((xmax - xmin) * (ymax - ymin))
            )
            annotation = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": ids[int(label)],
                "bbox": [float(xmin), float(ymin), float(xmax - xmin), float(ymax - ymin)],
                "area": area,
                "iscrowd": int(bool(crowd[i])),
            }
            if rle is not None:
                annotation["segmentation"] = rle
            annotations.append(annotation)
    categories = [{"id": i, "name": str(i)} for i in ids]
    return {"images": images, "annotations": annotations, "categories": categories}

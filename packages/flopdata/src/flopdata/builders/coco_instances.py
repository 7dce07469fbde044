"""`coco_instances`: COCO 2017 instances (boxes, 80 contiguous labels, crowd flags, areas and masks).

Layout read: `SOURCE/annotations/instances_{train,val}2017.json` and `SOURCE/{train,val}2017/*.jpg`. Labels
are the 80 COCO categories in increasing COCO-id order (contiguous 0..79); the map back to COCO ids is
`info.metadata["coco_category_ids"]` and each object's `category_id`. An annotation whose box has zero width or
height (no area, nothing to detect) is dropped, and the count is printed as a warning naming the annotation file
(torchvision's and detectron2's COCO loaders drop such boxes too); a negative size or a box outside its image is
an error naming the annotation. Boxes are TFDS BBoxes (normalised ymin,
xmin, ymax, xmax). Masks (polygons, uncompressed or compressed RLE in the JSON) are stored as COCO
compressed-RLE strings, decoded with `pycocotools.mask.decode({"size": [h, w], "counts": s})`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from pycocotools import mask as mask_utils

from ..images import read_rgb_image_bytes
from .base import OfflineBuilder

_SPLITS = {"train": "train2017", "validation": "val2017"}


def category_table(categories: list[dict]) -> tuple[list[int], list[str]]:
    """COCO ids and names sorted by id: position in these lists is the contiguous label."""
    ordered = sorted(categories, key=lambda category: int(category["id"]))
    return [int(c["id"]) for c in ordered], [str(c["name"]) for c in ordered]


def encode_segmentation(segmentation, height: int, width: int, *, where: str) -> str:
    """A COCO `segmentation` (polygon list, uncompressed or compressed RLE) as a compressed-RLE string."""
    if isinstance(segmentation, list):
        if not segmentation or any(len(polygon) < 6 or len(polygon) % 2 for polygon in segmentation):
            raise ValueError(
                f"{where}: polygons need an even number (>= 6) of coordinates, got {segmentation!r:.80}"
            )
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation, dict) and "counts" in segmentation:
        if list(segmentation.get("size", [])) != [height, width]:
            raise ValueError(
                f"{where}: RLE size {segmentation.get('size')} differs from the image {[height, width]}"
            )
        if isinstance(segmentation["counts"], list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = dict(segmentation)
    else:
        raise ValueError(f"{where}: segmentation must be polygons or RLE, got {type(segmentation).__name__}")
    counts = rle["counts"]
    return counts.decode("ascii") if isinstance(counts, bytes) else str(counts)


_REQUIRED = {
    "images": ("id", "file_name", "height", "width"),
    "annotations": ("id", "image_id", "category_id", "bbox", "area", "segmentation"),
}


class CocoInstances(OfflineBuilder):
    """COCO 2017 instance annotations with masks."""

    def __init__(
        self, *, source: str | Path | None = None, num_examples: int | None = None, seed: int = 0, **kwargs
    ):
        if source is None:
            raise ValueError("coco_instances needs source=<COCO root with annotations/>, got source=None")
        self._source = Path(source)
        self._num_examples = num_examples
        del seed  # the real data has a fixed order
        self._annotations = {split: self._load(split) for split in _SPLITS}
        tables = {split: category_table(data["categories"]) for split, data in self._annotations.items()}
        if tables["train"] != tables["validation"]:
            raise ValueError("instances_train2017.json and instances_val2017.json list different categories")
        self._category_ids, self._category_names = tables["train"]
        super().__init__(
            build_options={"source": str(self._source.resolve()), "num_examples": num_examples}, **kwargs
        )

    def _annotation_file(self, split: str) -> Path:
        return self._source / "annotations" / f"instances_{_SPLITS[split]}.json"

    def _load(self, split: str) -> dict:
        path = self._annotation_file(split)
        if not path.exists():
            raise ValueError(f"COCO split {split!r}: annotation file {str(path)!r} does not exist")
        try:
            with open(path) as handle:
                data = json.load(handle)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{str(path)!r} is not valid JSON: {error}") from error
        if not isinstance(data, dict):
            raise ValueError(f"{str(path)!r} holds a JSON {type(data).__name__}; expected an object with images, "
                             "annotations and categories")
        for key in ("images", "annotations", "categories"):
            if not isinstance(data.get(key), list):
                raise ValueError(f"{str(path)!r} has no {key!r} list; is it an instances_*.json file?")
        # Every field the builder reads, checked before anything is written.
        for key, fields in _REQUIRED.items():
            for number, entry in enumerate(data[key]):
                missing = [f for f in fields if not isinstance(entry, dict) or f not in entry]
                if missing:
                    shown = f"id {entry['id']}" if isinstance(entry, dict) and "id" in entry else f"#{number}"
                    raise ValueError(f"{str(path)!r}: {key[:-1]} {shown} has no {', '.join(map(repr, missing))}")
        return data

    def _info(self):
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "image/id": np.int64,
                    "image/filename": tfds.features.Text(),
                    "objects": tfds.features.Sequence(
                        {
                            "bbox": tfds.features.BBoxFeature(),
                            "label": tfds.features.ClassLabel(names=self._category_names),
                            "category_id": np.int64,
                            "is_crowd": np.bool_,
                            "area": np.float32,
                            "mask": tfds.features.Text(),  # compressed RLE counts, size = image size
                        }
                    ),
                }
            ),
            metadata=self._metadata(coco_category_ids=self._category_ids),
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        return {split: self._generate_examples(split) for split in _SPLITS}

    def _generate_examples(self, split):
        data = self._annotations[split]
        label_of = {coco_id: label for label, coco_id in enumerate(self._category_ids)}
        by_image: dict[int, list[dict]] = {}
        for annotation in data["annotations"]:
            by_image.setdefault(int(annotation["image_id"]), []).append(annotation)
        images = sorted(data["images"], key=lambda image: int(image["id"]))
        if self._num_examples is not None:
            images = images[: self._num_examples]
        degenerate: list[str] = []
        for image in images:
            path = self._source / _SPLITS[split] / image["file_name"]
            if not path.exists():
                raise ValueError(f"COCO {split} image id {image['id']}: file {str(path)!r} does not exist")
            encoded, (height, width) = read_rgb_image_bytes(path)
            if (height, width) != (int(image["height"]), int(image["width"])):
                raise ValueError(
                    f"{str(path)!r} is {height}x{width}, the JSON says {image['height']}x{image['width']}"
                )
            objects = []
            for annotation in sorted(by_image.get(int(image["id"]), []), key=lambda a: int(a["id"])):
                where = f"{path.name} annotation id {annotation['id']}"
                if int(annotation["category_id"]) not in label_of:
                    raise ValueError(
                        f"{where}: category_id {annotation['category_id']} is not in 'categories'"
                    )
                x, y, w, h = (float(v) for v in annotation["bbox"])
                if w < 0 or h < 0 or x < 0 or y < 0 or x + w > width + 1 or y + h > height + 1:
                    raise ValueError(
                        f"{where}: bbox {annotation['bbox']} is outside the {width}x{height} image"
                    )
                if w == 0 or h == 0:  # no area: dropped and counted, as torchvision's and detectron2's loaders do
                    degenerate.append(where)
                    continue
                box = tfds.features.BBox(
                    ymin=y / height,
                    xmin=x / width,
                    ymax=min(1.0, (y + h) / height),
                    xmax=min(1.0, (x + w) / width),
                )
                objects.append(
                    {
                        "bbox": box,
                        "label": label_of[int(annotation["category_id"])],
                        "category_id": int(annotation["category_id"]),
                        "is_crowd": bool(annotation.get("iscrowd", 0)),
                        "area": float(annotation["area"]),
                        "mask": encode_segmentation(annotation["segmentation"], height, width, where=where),
                    }
                )
            yield (
                int(image["id"]),
                {
                    "image": encoded,
                    "image/id": int(image["id"]),
                    "image/filename": image["file_name"],
                    "objects": {
                        key: [obj[key] for obj in objects]
                        for key in ("bbox", "label", "category_id", "is_crowd", "area", "mask")
                    },
                },
            )
        if degenerate:
            print(f"warning: {self._annotation_file(split)}: dropped {len(degenerate)} annotation(s) with a "
                  f"zero-width or zero-height bbox (e.g. {degenerate[0]})", file=sys.stderr, flush=True)

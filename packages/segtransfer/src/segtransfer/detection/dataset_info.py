"""What a detection run needs to know about a dataset before reading a record: classes and splits.

`describe_detection_dataset(directory)` reads a TFDS directory's JSON files (flopdata): the instance features
the pipeline needs (``image``, ``objects`` with ``bbox`` and ``label``), the number of classes (the length of
the builder's ``coco_category_ids`` metadata for COCO, else the ``objects/label`` ClassLabel's size), the split
sizes and which split evaluates ("validation" if present, else "test").
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import flopdata

from .ground_truth import category_ids

__all__ = ["DetectionDatasetInfo", "describe_detection_dataset"]


@dataclasses.dataclass(frozen=True)
class DetectionDatasetInfo:
    directory: str
    name: str
    num_classes: int
    split_sizes: dict[str, int]
    train_split: str
    eval_split: str

    @property
    def train_size(self) -> int:
        return self.split_sizes[self.train_split]


def describe_detection_dataset(directory: str | Path) -> DetectionDatasetInfo:
    """Classes and splits of a TFDS instance-detection directory; ValueError naming what is missing."""
    directory = str(directory)
    summary = flopdata.describe(directory)
    missing = {"image", "objects"} - set(summary.features)
    if missing:
        raise ValueError(f"dataset {directory!r} lacks features {sorted(missing)}; it is not an instance "
                         "detection set (expected image + objects/{bbox,label}, e.g. coco_instances, fmnist_scenes)")
    sizes = summary.split_sizes
    if "train" not in sizes:
        raise ValueError(f"dataset {directory!r} has splits {sorted(sizes)}; expected a 'train' split")
    evals = [s for s in ("validation", "test") if s in sizes]
    if not evals:
        raise ValueError(f"dataset {directory!r} has splits {sorted(sizes)}; expected 'validation' or 'test'")
    return DetectionDatasetInfo(directory=directory, name=summary.name, num_classes=len(category_ids(directory)),
                                split_sizes=sizes, train_split="train", eval_split=evals[0])

"""What a detection run needs to know about a dataset before reading a record: classes and splits.

`describe_detection_dataset(directory)` is `segtransfer.dataset_info.describe_transfer_dataset` with the instance
features the pipeline needs (``image``, ``objects`` with ``bbox`` and ``label``) and the number of classes (the
length of the builder's ``coco_category_ids`` metadata for COCO, else the ``objects/label`` ClassLabel's size).
"""

from __future__ import annotations

from pathlib import Path

from ..dataset_info import TransferDatasetInfo, describe_transfer_dataset
from .ground_truth import category_ids

__all__ = ["DetectionDatasetInfo", "describe_detection_dataset"]

DetectionDatasetInfo = TransferDatasetInfo


def describe_detection_dataset(directory: str | Path) -> TransferDatasetInfo:
    """Classes and splits of a TFDS instance-detection directory; ValueError naming what is missing."""
    return describe_transfer_dataset(
        directory, features=("image", "objects"), num_classes=lambda d: len(category_ids(d)),
        kind="an instance detection set (expected image + objects/{bbox,label}, e.g. coco_instances, fmnist_scenes)")

"""What a fine-tuning run needs to know about a segmentation dataset, and the whole-image batches for slide eval.

`describe_segmentation_dataset(directory)` is `segtransfer.dataset_info.describe_transfer_dataset` with the features
``image`` and ``segmentation_mask`` and the number of classes of `flopdata.num_segmentation_classes` (ADE20K's
``num_classes`` or fmnist_scenes' ``segmentation_classes``).

`whole_image_batches` serves evaluation images uncropped for sliding-window inference (mmseg's ADE20K test
pipeline ``Resize(scale=(2048, 512), keep_ratio=True)``): short side resized to ``short_side`` (long side at most
4x it), mask by nearest neighbour, one image per batch since sizes differ. The metric is then computed at that
resolution, not at the original one as mmseg does (the centre-crop protocol of the study has the same property).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import flopdata
import numpy as np
from flopdata import RecordSource, resize_image

from ..dataset_info import TransferDatasetInfo, describe_transfer_dataset
from .data import SegmentationData, SegmentationTransform

__all__ = ["SegmentationDatasetInfo", "describe_segmentation_dataset", "whole_image_batches"]


SegmentationDatasetInfo = TransferDatasetInfo


def describe_segmentation_dataset(directory: str | Path) -> TransferDatasetInfo:
    """Classes and splits of a TFDS segmentation directory; ValueError naming what is missing."""
    return describe_transfer_dataset(directory, features=("image", "segmentation_mask"), kind="a segmentation set",
                                     num_classes=flopdata.num_segmentation_classes)


def whole_image_batches(
    directory: str | Path, split: str, num_classes: int, *, short_side: int
) -> Iterator[dict[str, np.ndarray]]:
    """``{"image": float32 [1, h, w, 3] in [0, 1], "mask": int32 [1, h, w]}`` per example, in order."""
    source = RecordSource(str(directory), split)
    config = SegmentationData(str(directory), batch_size=1, num_classes=num_classes, split=split, train=False,
                              crop_size=short_side)
    transform = SegmentationTransform(source, config)  # its decode checks the labels against num_classes
    for index in range(len(source)):
        image, mask = transform.decode(source[index])
        h, w = mask.shape
        scale = min(short_side / min(h, w), 4 * short_side / max(h, w))
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        image, mask = resize_image(image, nh, nw), resize_image(mask, nh, nw, nearest=True)
        yield {
            "image": (image.astype(np.float32) / np.float32(255.0))[None],
            "mask": mask.astype(np.int32)[None],
        }

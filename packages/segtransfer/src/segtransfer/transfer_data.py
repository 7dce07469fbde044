"""What a fine-tuning run needs to know about a segmentation dataset, and the whole-image batches for slide eval.

`describe_segmentation_dataset(directory)` reads a TFDS directory's metadata (no records) with flopdata: the number
of classes (`flopdata.num_segmentation_classes`: ADE20K's ``num_classes`` or fmnist_scenes' ``segmentation_classes``),
the split sizes and which split evaluates ("validation" if present, else "test").

`whole_image_batches` serves evaluation images uncropped for sliding-window inference (mmseg's ADE20K test
pipeline ``Resize(scale=(2048, 512), keep_ratio=True)``): short side resized to ``short_side`` (long side at most
4x it), mask by nearest neighbour, one image per batch since sizes differ. The metric is then computed at that
resolution, not at the original one as mmseg does (the centre-crop protocol of the study has the same property).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import flopdata
import numpy as np
from flopdata import RecordSource, resize_image

from .data import SegmentationData, SegmentationTransform

__all__ = ["SegmentationDatasetInfo", "describe_segmentation_dataset", "whole_image_batches"]


@dataclasses.dataclass(frozen=True)
class SegmentationDatasetInfo:
    directory: str
    name: str
    num_classes: int
    split_sizes: dict[str, int]
    train_split: str
    eval_split: str

    @property
    def train_size(self) -> int:
        return self.split_sizes[self.train_split]


def describe_segmentation_dataset(directory: str | Path) -> SegmentationDatasetInfo:
    """Classes and splits of a TFDS segmentation directory; ValueError naming what is missing."""
    directory = str(directory)
    summary = flopdata.describe(directory)
    missing = {"image", "segmentation_mask"} - set(summary.features)
    if missing:
        raise ValueError(f"dataset {directory!r} lacks features {sorted(missing)}; it is not a segmentation set")
    num_classes = flopdata.num_segmentation_classes(directory)
    sizes = summary.split_sizes
    if "train" not in sizes:
        raise ValueError(f"dataset {directory!r} has no 'train' split; it has {sorted(sizes)}")
    eval_split = next((s for s in ("validation", "test") if s in sizes), None)
    if eval_split is None:
        raise ValueError(f"dataset {directory!r} has no 'validation' or 'test' split; it has {sorted(sizes)}")
    return SegmentationDatasetInfo(directory, summary.name, num_classes, sizes, "train", eval_split)


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

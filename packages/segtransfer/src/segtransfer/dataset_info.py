"""What a transfer run needs to know about a dataset before reading a record: classes and splits.

`describe_transfer_dataset(directory, features=..., kind=..., num_classes=...)` reads a TFDS directory's JSON
files (`flopdata.describe`, no records): it checks the features the task's pipeline needs, takes the split sizes
and which split evaluates ("validation" if present, else "test"; training is "train"), and counts the classes
with the task's ``num_classes(directory)``. Segmentation (`describe_segmentation_dataset`) and detection
(`segtransfer.detection.describe_detection_dataset`) are this with their features and class counts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from pathlib import Path

import flopdata

__all__ = ["TransferDatasetInfo", "describe_transfer_dataset"]


@dataclasses.dataclass(frozen=True)
class TransferDatasetInfo:
    directory: str
    name: str
    num_classes: int
    split_sizes: dict[str, int]
    train_split: str
    eval_split: str

    @property
    def train_size(self) -> int:
        return self.split_sizes[self.train_split]


def describe_transfer_dataset(directory: str | Path, *, features: Collection[str], kind: str,
                              num_classes: Callable[[str], int]) -> TransferDatasetInfo:
    """Classes and splits of a TFDS directory holding ``features``; ValueError naming what is missing (``kind``
    says what the dataset is not then, e.g. "a segmentation set")."""
    directory = str(directory)
    summary = flopdata.describe(directory)
    missing = set(features) - set(summary.features)
    if missing:
        raise ValueError(f"dataset {directory!r} lacks features {sorted(missing)}; it is not {kind}")
    sizes = summary.split_sizes
    if "train" not in sizes:
        raise ValueError(f"dataset {directory!r} has splits {sorted(sizes)}; expected a 'train' split")
    evals = [s for s in ("validation", "test") if s in sizes]
    if not evals:
        raise ValueError(f"dataset {directory!r} has splits {sorted(sizes)}; expected 'validation' or 'test'")
    return TransferDatasetInfo(directory=directory, name=summary.name, num_classes=num_classes(directory),
                               split_sizes=sizes, train_split="train", eval_split=evals[0])

"""What a built TFDS directory says about itself (no records read): features, splits, class names, metadata.

Reading goes through `open_builder`, which turns the failures of TFDS and protobuf into ValueErrors that name
the file at fault ("<dir>/dataset_info.json is not a valid TFDS dataset_info.json (...)").

    summary = describe("data/fmnist_scenes/1.0.0")   # DatasetSummary(name='fmnist_scenes', split_sizes={...}, ...)
    label_names("data/fmnist_scenes/1.0.0")          # ('t-shirt', 'trouser', ..., 'ankle boot')
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import tensorflow_datasets as tfds
from google.protobuf import json_format

__all__ = ["DatasetSummary", "describe", "label_names", "num_segmentation_classes", "open_builder"]

INFO_FILE = "dataset_info.json"
FEATURES_FILE = "features.json"


def short_reason(error: BaseException) -> str:
    """The first line of a third-party error's message, at most 160 characters (for "<file> is not ... (why)")."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _check_json(path: Path, kind: str) -> None:
    try:
        parsed = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a valid TFDS {kind} ({short_reason(error)})") from error
    if not isinstance(parsed, dict):
        raise ValueError(f"{path} is not a valid TFDS {kind} (a JSON {type(parsed).__name__}, not an object)")


def open_builder(directory: str | Path) -> tfds.core.DatasetBuilder:
    """`tfds.builder_from_directory(directory)`, with a ValueError naming the directory or file when it is not
    a built TFDS dataset (the versioned folder holding `dataset_info.json`, e.g. `data/fmnist_scenes/1.0.0`)."""
    path = Path(directory)
    if not path.is_dir():
        raise ValueError(f"dataset directory {str(path)!r} does not exist (or is not a directory)")
    info_path = path / INFO_FILE
    if not info_path.is_file():
        hint = ""
        versions = sorted(p.parent.name for p in path.glob(f"*/{INFO_FILE}"))
        if versions:
            hint = f"; its subfolders {versions} are built versions: pass one of those"
        raise ValueError(f"{str(path)!r} has no {INFO_FILE}: it is not a built TFDS dataset directory{hint}")
    _check_json(info_path, INFO_FILE)
    features_path = path / FEATURES_FILE
    if features_path.exists():
        _check_json(features_path, FEATURES_FILE)
    try:
        return tfds.builder_from_directory(str(path))
    except (json_format.Error, ValueError, KeyError, TypeError, OSError) as error:
        missing = "" if features_path.exists() else f"; there is no {FEATURES_FILE} beside it"
        raise ValueError(f"{info_path} is not a valid TFDS {INFO_FILE} ({short_reason(error)}{missing})") from error


@dataclasses.dataclass(frozen=True)
class DatasetSummary:
    """A built dataset's name, top-level feature names (sorted), examples per split and builder metadata."""

    directory: str
    name: str
    features: tuple[str, ...]
    split_sizes: dict[str, int]
    metadata: dict[str, Any]


def describe(directory: str | Path) -> DatasetSummary:
    """The summary of a built TFDS directory (reads its JSON files only)."""
    info = open_builder(directory).info
    return DatasetSummary(
        directory=str(directory),
        name=info.name,
        features=tuple(sorted(info.features.keys())),
        split_sizes={name: int(split.num_examples) for name, split in info.splits.items()},
        metadata=dict(info.metadata or {}),
    )


def _class_label(features, name: str):
    """The ClassLabel at a flat feature name ('label', 'labels', 'objects/label'), through Sequences."""
    feature = features
    for part in name.split("/"):
        feature = getattr(feature, "feature", feature)  # Sequence(x) -> x
        if not isinstance(feature, tfds.features.FeaturesDict) or part not in feature.keys():
            return None
        feature = feature[part]
    feature = getattr(feature, "feature", feature)
    return feature if isinstance(feature, tfds.features.ClassLabel) else None


def label_names(directory: str | Path, *, feature: str | None = None) -> tuple[str, ...]:
    """The class names of a ClassLabel feature of a built TFDS directory: `feature` (a flat name such as
    'objects/label'), or by default the first of 'label' and 'labels' that exists.

    Datasets written without names (`ClassLabel(num_classes=k)`) give ("0", ..., "k-1").
    """
    features = open_builder(directory).info.features
    candidates = (feature,) if feature is not None else ("label", "labels")
    for name in candidates:
        class_label = _class_label(features, name)
        if class_label is not None:
            return tuple(class_label.names)
    wanted = repr(feature) if feature is not None else "'label' or 'labels'"
    raise ValueError(f"{str(directory)!r} has no ClassLabel feature {wanted}; it has {sorted(features.keys())}")


def num_segmentation_classes(directory: str | Path) -> int:
    """The number of semantic classes of a segmentation set, from the metadata our builders write:
    `num_classes` (ade20k: 150, labels 0..149 and 255 = ignore) or `segmentation_classes` (fmnist_scenes:
    background + 10 items)."""
    metadata = dict(open_builder(directory).info.metadata or {})
    if "num_classes" in metadata:
        return int(metadata["num_classes"])
    if "segmentation_classes" in metadata:
        return len(metadata["segmentation_classes"])
    raise ValueError(
        f"dataset {str(directory)!r}: metadata has neither 'num_classes' nor 'segmentation_classes' "
        f"(keys: {sorted(metadata)})"
    )

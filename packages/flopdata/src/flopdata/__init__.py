"""Datasets for flopwise: the builders that write them and the reading that the input pipelines share.

Builders write TFDS directories (`dataset_info.json`, `features.json`, array_record shards) offline and without
TensorFlow: `build(name, ...)` for a name in `BUILDERS` (`fmnist_objects`, `fmnist_scenes`, `ade20k`,
`coco_instances`, `image_folder`); `resolve(name_or_dir)` finds a built one (building the embedded Fashion-MNIST
sets on first use) under `default_data_dir()`.

Reading: `RecordSource` (a grain random-access source of raw records), `RecordLoader` (grain's loader, whose
checkpointed state still matches after the data moved with its run: `same_records`), `parse_example`, `decode_rgb` /
`decode_gray` / `resize_image`, `allow_worker_processes`, `read_options` (grain's read options for in-process
loaders), `DecodedSource` (a split decoded once per process and served from memory; `use_decoded` decides
by size, `MEMO` keeps recent splits), `DecodedBatches` (an in-process loader gathering whole batches from it);
every failure is a ValueError naming the dataset file, split and index.
Metadata without reading records: `describe`, `label_names`, `num_segmentation_classes`.
`contact_sheet` / `write_contact_sheet` draw scene examples with their masks and boxes.
"""

from . import builders
from .build import BUILDERS, build, check_build
from .contact_sheet import contact_sheet, write_contact_sheet
from .data_dir import DATA_ENV, default_data_dir
from .dataset_info import DatasetSummary, describe, label_names, num_segmentation_classes, open_builder
from .decoded import (
    DECODE_LIMIT_BYTES,
    MEMO,
    MEMO_MAX_BYTES,
    DecodedBatches,
    DecodedBatchIterator,
    DecodedMemo,
    DecodedSource,
    use_decoded,
)
from .images import decode_gray, decode_rgb, encode_png, resize_image
from .records import RecordLoader, RecordSource, allow_worker_processes, parse_example, read_options, same_records
from .resolve import resolve

# The one place the version is written (pyproject.toml reads it: [tool.setuptools.dynamic]).
__version__ = "0.2.0"

__all__ = [
    "BUILDERS",
    "DATA_ENV",
    "DECODE_LIMIT_BYTES",
    "MEMO",
    "MEMO_MAX_BYTES",
    "DatasetSummary",
    "DecodedBatches",
    "DecodedBatchIterator",
    "DecodedMemo",
    "DecodedSource",
    "RecordLoader",
    "RecordSource",
    "allow_worker_processes",
    "build",
    "builders",
    "check_build",
    "contact_sheet",
    "decode_gray",
    "decode_rgb",
    "default_data_dir",
    "describe",
    "encode_png",
    "label_names",
    "num_segmentation_classes",
    "open_builder",
    "parse_example",
    "read_options",
    "resize_image",
    "resolve",
    "same_records",
    "use_decoded",
    "write_contact_sheet",
]

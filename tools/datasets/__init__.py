"""Dataset builders (TFDS directory format, array_record files, written without TensorFlow).

`BUILDERS` maps the command-line names to builder classes; `build(name, ...)` writes one and returns the
directory that `tfds.builder_from_directory` reads.
"""

from __future__ import annotations

import os
from pathlib import Path

import tensorflow_datasets as tfds

from datasets.ade20k import Ade20k
from datasets.coco_instances import CocoInstances
from datasets.fmnist import FmnistObjects, FmnistScenes
from datasets.image_folder import ImageFolder

BUILDERS = {
    "fmnist_objects": FmnistObjects,
    "fmnist_scenes": FmnistScenes,
    "ade20k": Ade20k,
    "coco_instances": CocoInstances,
    "image_folder": ImageFolder,
}

REPO_ROOT = Path(__file__).resolve().parents[2]


def default_data_dir() -> Path:
    """`$FLOPWISE_DATA` if set, else `data/` at the repository root (git-ignored)."""
    return Path(os.environ.get("FLOPWISE_DATA", REPO_ROOT / "data"))


def build(name: str, *, data_dir: str | Path | None = None, **options) -> Path:
    """Builds dataset `name` (see BUILDERS) into `data_dir/name/VERSION` and returns that directory.

    `options` go to the builder: `source`, `num_examples`, `seed`, and for the fmnist sets `image_size`.
    An existing build in the same place is reused when it was made with the same options, and is an error
    otherwise (delete the folder to rebuild).
    """
    if name not in BUILDERS:
        raise ValueError(f"name={name!r}; expected one of {sorted(BUILDERS)}")
    directory = Path(data_dir) if data_dir is not None else default_data_dir()
    builder = BUILDERS[name](data_dir=str(directory), file_format="array_record", **options)
    if (Path(builder.data_dir) / "dataset_info.json").exists():
        existing = tfds.builder_from_directory(builder.data_dir).info.metadata or {}
        if existing.get("build_options") != builder.build_options:
            raise ValueError(
                f"{builder.data_dir} was built with options {existing.get('build_options')}, not "
                f"{builder.build_options}; delete that folder or pass another data_dir"
            )
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    return Path(builder.data_dir)

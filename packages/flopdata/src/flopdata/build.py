"""Building a dataset by name: `BUILDERS` maps the names to builder classes; `build(name, ...)` writes one and
returns the directory that `tfds.builder_from_directory` (and `flopdata.RecordSource`) reads; `check_build`
checks one without writing."""

from __future__ import annotations

from pathlib import Path

import tensorflow_datasets as tfds

from .builders import Ade20k, CocoInstances, FmnistObjects, FmnistScenes, ImageFolder, OfflineBuilder
from .data_dir import default_data_dir
from .dataset_info import INFO_FILE, open_builder

__all__ = ["BUILDERS", "build", "check_build"]

BUILDERS = {
    "fmnist_objects": FmnistObjects,
    "fmnist_scenes": FmnistScenes,
    "ade20k": Ade20k,
    "coco_instances": CocoInstances,
    "image_folder": ImageFolder,
}


def _checked_builder(name: str, data_dir: str | Path | None, options: dict) -> tuple[OfflineBuilder, bool]:
    """The builder of `name` in `data_dir` with `options`, and whether it is built there already; raises
    ValueError for what `build` refuses, before anything is written (constructing a builder writes nothing)."""
    if name not in BUILDERS:
        raise ValueError(f"name={name!r}; expected one of {sorted(BUILDERS)}")
    unknown = sorted(set(options) - set(BUILDERS[name].OPTIONS))
    if unknown:
        raise ValueError(f"{name} takes the options {list(BUILDERS[name].OPTIONS)}, not {unknown}")
    directory = Path(data_dir) if data_dir is not None else default_data_dir()
    builder = BUILDERS[name](data_dir=str(directory), file_format="array_record", **options)
    if (Path(builder.data_dir) / INFO_FILE).exists():
        existing = open_builder(builder.data_dir).info.metadata or {}
        if existing.get("build_options") != builder.build_options:
            raise ValueError(
                f"{builder.data_dir} was built with options {existing.get('build_options')}, not "
                f"{builder.build_options}; delete that folder or pass another data_dir"
            )
        return builder, True
    builder.check_source()  # a missing source is refused before the data dir gets its first folder
    return builder, False


def check_build(name: str, *, data_dir: str | Path | None = None, **options) -> None:
    """Everything `build` checks before it writes, without writing anything: ValueError for an unknown name or
    option, a build in the same place made with other options, or a source the builder cannot read (naming the
    folder or file). Lets a caller check several builds before starting the first."""
    _checked_builder(name, data_dir, options)


def build(name: str, *, data_dir: str | Path | None = None, **options) -> Path:
    """Builds dataset `name` (see BUILDERS) into `data_dir/name/VERSION` and returns that directory.

    `data_dir` defaults to `flopdata.default_data_dir()`. `options` go to the builder: `source`,
    `num_examples`, `seed`, and for the fmnist sets `image_size` (`BUILDERS[name].OPTIONS`); an option the
    builder does not take is a ValueError before anything is written. An existing build in the same place is
    reused when it was made with the same options, and is an error otherwise (delete the folder to rebuild).
    """
    builder, built = _checked_builder(name, data_dir, options)
    if not built:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    return Path(builder.data_dir)

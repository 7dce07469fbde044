"""From a dataset name or a path to the built TFDS directory the pipelines read.

    resolve("fmnist_scenes")              # <data dir>/fmnist_scenes/1.0.0, built on first use
    resolve("ade20k", data_dir="/data")   # /data/ade20k/1.0.0 if built, else a ValueError saying how to build it
    resolve("/data/imagenet2012/5.1.0")   # any built TFDS directory, returned as it is
"""

from __future__ import annotations

import sys
from pathlib import Path

from .build import BUILDERS, build
from .data_dir import default_data_dir
from .dataset_info import INFO_FILE, open_builder

__all__ = ["resolve"]


def _version_key(directory: Path) -> tuple:
    parts = directory.name.split(".")
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def _latest_version(folder: Path) -> Path | None:
    built = [info.parent for info in folder.glob(f"*/{INFO_FILE}")]
    return max(built, key=_version_key) if built else None


def resolve(name_or_dir: str | Path, *, data_dir: str | Path | None = None) -> Path:
    """The built TFDS directory for `name_or_dir`:

    - a built TFDS directory (holding `dataset_info.json`): itself; a folder of built versions
      (`data/fmnist_scenes`): its newest version;
    - a name from `flopdata.BUILDERS`: its newest version under `data_dir/name` (default `default_data_dir()`).
      The embedded Fashion-MNIST sets are built there on first use (default options: 60K + 10K examples); the
      others need a source, so an unbuilt one is a ValueError saying how to build it.

    Anything else is a ValueError listing the known names.
    """
    path = Path(name_or_dir)
    if (path / INFO_FILE).is_file():
        open_builder(path)  # a corrupt dataset_info.json is reported here, naming the file
        return path
    if str(name_or_dir) in BUILDERS:
        name = str(name_or_dir)
        root = Path(data_dir) if data_dir is not None else default_data_dir()
        latest = _latest_version(root / name)
        if latest is not None:
            return latest
        if BUILDERS[name].EMBEDDED:
            print(f"building {name} under {root} (first use) ...", file=sys.stderr)
            return build(name, data_dir=root)
        raise ValueError(
            f"dataset {name!r} is not built; run: flopwise-build-dataset {name} --source ... "
            f"--data-dir {root} (in Python: flopdata.build({name!r}, source=..., data_dir={str(root)!r}))"
        )
    if path.is_dir():
        latest = _latest_version(path)
        if latest is not None:
            return latest
        raise ValueError(
            f"{str(path)!r} is a folder but not a built TFDS dataset: it has no {INFO_FILE}, nor subfolders "
            f"with one; build a dataset with flopdata.build (or flopwise-build-dataset)"
        )
    raise ValueError(
        f"dataset {str(name_or_dir)!r} is not a TFDS directory and not one of the known names {sorted(BUILDERS)}"
    )

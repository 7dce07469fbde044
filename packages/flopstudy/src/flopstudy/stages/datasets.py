"""The sweep's calls into flopdata: make sure a dataset is there, build one with options, find one."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["build_dataset", "check_dataset", "resolve_dataset"]


def check_dataset(name: str, *, data_dir: str | None) -> Path:
    """The built TFDS directory of ``name``, building an embedded set (Fashion-MNIST) on first use; ValueError
    naming ``name`` for anything else that is not built. The sweep calls it for every dataset before any run,
    so worker processes never build a set at the same time."""
    import flopdata

    return flopdata.resolve(name, data_dir=data_dir)


def build_dataset(name: str, options: Mapping[str, Any], *, data_dir: str | None) -> Path:
    """Builds ``name`` with builder ``options`` under ``data_dir`` (an identical earlier build is reused; one
    with other options is a ValueError saying so)."""
    import flopdata

    return flopdata.build(name, data_dir=data_dir, **dict(options))


def resolve_dataset(name: str, *, data_dir: str | None) -> Path:
    """The built TFDS directory of ``name`` (the embedded sets are built on first use)."""
    import flopdata

    return flopdata.resolve(name, data_dir=data_dir)

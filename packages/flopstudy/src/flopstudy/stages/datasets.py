"""The sweep's calls into flopdata: make sure a dataset is there, build one with options, find one."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import flopdata

__all__ = ["build_dataset", "check_dataset", "resolve_dataset"]


def check_dataset(name: str, *, data_dir: str | None) -> None:
    """ValueError naming ``name`` unless it is an embedded set (built on first use), a built set under
    ``data_dir`` or a TFDS directory. Builds nothing."""
    builder = flopdata.BUILDERS.get(name)
    if builder is not None and builder.EMBEDDED:
        return
    flopdata.resolve(name, data_dir=data_dir)  # no side effect for anything but the embedded sets


def build_dataset(name: str, options: Mapping[str, Any], *, data_dir: str | None) -> Path:
    """Builds ``name`` with builder ``options`` under ``data_dir`` (an identical earlier build is reused; one
    with other options is a ValueError saying so)."""
    return flopdata.build(name, data_dir=data_dir, **dict(options))


def resolve_dataset(name: str, *, data_dir: str | None) -> Path:
    """The built TFDS directory of ``name`` (an embedded set is built on first use: the sweep resolves every
    dataset once before any run, so worker processes never build one at the same time)."""
    return flopdata.resolve(name, data_dir=data_dir)

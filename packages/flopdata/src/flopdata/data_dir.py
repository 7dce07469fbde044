"""Where built datasets live by default."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_ENV", "default_data_dir"]

DATA_ENV = "FLOPWISE_DATA"


def default_data_dir() -> Path:
    """`$FLOPWISE_DATA` if set (and not empty), else `data/` under the current working directory (a package
    cannot know a repository root: run the tools from the repository root, or set the variable)."""
    configured = os.environ.get(DATA_ENV)
    return Path(configured) if configured else Path.cwd() / "data"

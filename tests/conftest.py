"""Root tests: put `tools/` on sys.path so tests import the command-line tools as modules, and `tiny_data`: a data
dir with tiny Fashion-MNIST sets built from fake idx files (no Debian package needed)."""

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A data dir holding fmnist_objects (12 train images, 16 px) and fmnist_scenes (8 train images, 32 px), built
    by flopwise-build-dataset from 12 fake items of 6 classes."""
    from flopdata.cli import build_dataset

    source = tmp_path_factory.mktemp("idx")
    items = np.zeros((12, 28, 28), np.uint8)
    items[:, 4:24, 6:22] = 200
    for prefix in ("train", "t10k"):
        _write_idx(source / f"{prefix}-images-idx3-ubyte.gz", items)
        _write_idx(source / f"{prefix}-labels-idx1-ubyte.gz", np.arange(12) % 6)
    root = tmp_path_factory.mktemp("data")
    for name, size, count in (("fmnist_objects", "16", "12"), ("fmnist_scenes", "32", "8")):
        assert build_dataset.main([name, "--source", str(source), "--num-examples", count, "--image-size", size,
                                   "--data-dir", str(root)]) == 0
    return root

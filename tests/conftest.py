"""Root tests: put `tools/` on sys.path so tests import the command-line tools as modules, and `tests/` so they
import the helpers beside them (`doc_blocks`); `fake_idx_source`: fake
Fashion-MNIST idx files (no Debian package needed), and `tiny_data`: a data dir with tiny sets built from them."""

import sys
from pathlib import Path

import numpy as np
import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"
for folder in (TOOLS, Path(__file__).resolve().parent):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


@pytest.fixture(scope="session")
def fake_idx_source(tmp_path_factory, write_idx) -> Path:
    """Fake Fashion-MNIST idx files: 12 train and 12 test items (filled blobs) of classes 0..5."""
    source = tmp_path_factory.mktemp("idx")
    items = np.zeros((12, 28, 28), np.uint8)
    items[:, 4:24, 6:22] = 200
    for prefix in ("train", "t10k"):
        write_idx(source / f"{prefix}-images-idx3-ubyte.gz", items)
        write_idx(source / f"{prefix}-labels-idx1-ubyte.gz", np.arange(12) % 6)
    return source


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory, fake_idx_source) -> Path:
    """A data dir holding fmnist_objects (12 train images, 16 px) and fmnist_scenes (8 train images, 32 px), built
    by flopwise-build-dataset from `fake_idx_source`."""
    from flopdata.cli import build_dataset

    source = fake_idx_source
    root = tmp_path_factory.mktemp("data")
    for name, size, count in (("fmnist_objects", "16", "12"), ("fmnist_scenes", "32", "8")):
        assert build_dataset.main([name, "--source", str(source), "--num-examples", count, "--image-size", size,
                                   "--data-dir", str(root)]) == 0
    return root

"""Fashion-MNIST idx files, class words and pseudo-captions."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
from jaxtyping import Int64, UInt8

# Where the Debian package `dataset-fashion-mnist` puts the four idx files.
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

# The 10 Fashion-MNIST classes as plain words (index = label), with the article a caption uses.
CLASS_WORDS = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
MAX_CAPTION_CHARS = 55  # the study's CLIP captions are at most 55 characters
MAX_LABELS = 8  # at most 8 labels per image (study, JFT-like multi-label data)

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _open(path: Path) -> bytes:
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.exists():
            opener = gzip.open if candidate.suffix == ".gz" else open
            with opener(candidate, "rb") as handle:
                return handle.read()
    raise FileNotFoundError(f"Fashion-MNIST idx file {str(path)!r}(.gz) not found")


def check_source(source: Path | None = None) -> None:
    """FileNotFoundError naming the first idx file (plain or .gz) missing from ``source`` (default
    `default_source`), so a build is refused before anything is written."""
    folder = Path(source) if source is not None else default_source()
    for names in _FILES.values():
        for name in names:
            path = folder / name
            if not (path.exists() or path.with_name(name + ".gz").exists()):
                raise FileNotFoundError(f"Fashion-MNIST idx file {str(path)!r}(.gz) not found")


def _parse_idx(raw: bytes, name: str) -> np.ndarray:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{name!r} is not a uint8 idx file (magic bytes {raw[:4]!r})")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{name!r} holds {data.size} bytes of data, the header says {dims}")
    return data.reshape(dims)


def default_source() -> Path:
    """`$FLOPWISE_FMNIST` if set, else the Debian package folder."""
    return Path(os.environ.get("FLOPWISE_FMNIST", DEBIAN_DIR))


def load_split(
    split: str, source: Path | None = None
) -> tuple[UInt8[np.ndarray, "n h w"], Int64[np.ndarray, " n"]]:
    """Images uint8 [n, 28, 28] and labels int64 [n] of the `train` or `test` split."""
    if split not in _FILES:
        raise ValueError(f"split={split!r}; expected one of {sorted(_FILES)}")
    folder = Path(source) if source is not None else default_source()
    image_name, label_name = _FILES[split]
    images = _parse_idx(_open(folder / image_name), str(folder / image_name))
    labels = _parse_idx(_open(folder / label_name), str(folder / label_name)).astype(np.int64)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"Fashion-MNIST {split} files in {str(folder)!r} disagree: {images.shape} vs {labels.shape}"
        )
    if labels.max(initial=0) >= len(CLASS_WORDS):
        raise ValueError(f"Fashion-MNIST {split} labels reach {labels.max()}; expected < {len(CLASS_WORDS)}")
    return images, labels


def _with_article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def caption(labels: list[int] | tuple[int, ...]) -> str:
    """'This is a photo of a bag, a coat and a sneaker.' for labels in the given order.

    Labels are dropped from the end until the caption fits in 55 characters (the first always fits), so
    callers should order labels by importance (the scene builder orders them by visible area).
    """
    if not labels:
        raise ValueError("caption needs at least one label, got labels=[]")
    for count in range(len(labels), 0, -1):
        words = [_with_article(CLASS_WORDS[int(label)]) for label in labels[:count]]
        listed = words[0] if count == 1 else ", ".join(words[:-1]) + " and " + words[-1]
        text = f"This is a photo of {listed}."
        if len(text) <= MAX_CAPTION_CHARS:
            return text
    raise AssertionError("unreachable: a single label always fits")  # longest single caption is 34 chars

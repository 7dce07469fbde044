"""Image encoding and verification shared by the builders (PIL only; no TensorFlow)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 array [h, w], [h, w, 1] or [h, w, 3]."""
    if array.dtype != np.uint8:
        raise TypeError(f"encode_png expects uint8, got array.dtype={array.dtype}")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    buffer = io.BytesIO()
    # compress_level 1: masks and 64x64 renders compress well already; level 6 is ~3x slower for ~5% size.
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def read_rgb_image_bytes(path: Path) -> tuple[bytes, tuple[int, int]]:
    """The bytes of an image file, re-encoded as PNG only when it is not already an RGB JPEG/PNG.

    Returns the bytes and the (height, width). Raises ValueError naming the file when it does not decode.
    """
    raw = Path(path).read_bytes()
    try:
        with Image.open(io.BytesIO(raw)) as image:
            image.load()
            size = (image.height, image.width)
            if image.format in ("JPEG", "PNG") and image.mode == "RGB":
                return raw, size
            rgb = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"corrupt or unreadable image file {str(path)!r}: {error}") from error
    return encode_png(rgb), size


def read_label_png(path: Path) -> np.ndarray:
    """A single-channel label PNG as a uint8/int array [h, w]; ValueError naming the file if unreadable."""
    try:
        with Image.open(path) as image:
            if image.mode not in ("L", "P", "I", "I;16"):
                raise ValueError(f"label image {str(path)!r} has mode {image.mode!r}; expected one channel")
            return np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"corrupt or unreadable label image {str(path)!r}: {error}") from error

"""Image bytes <-> uint8 arrays (PIL only; no TensorFlow): encoding for the builders, decoding and resizing for
the pipelines that read the records. Every failure is a ValueError naming the file or example it concerns."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from jaxtyping import Integer, UInt8
from PIL import Image, UnidentifiedImageError

__all__ = ["IMAGE_SUFFIXES", "decode_gray", "decode_rgb", "encode_png", "read_label_png", "read_rgb_image_bytes",
           "resize_image"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
"""The image files the builders read from a folder (compared lower-cased: ImageNet's files end in .JPEG)."""

# What PIL raises for bytes that are not an image, or a truncated / corrupt one.
_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError)


def encode_png(array: UInt8[np.ndarray, "h w *c"]) -> bytes:
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
    except _DECODE_ERRORS as error:
        raise ValueError(f"corrupt or unreadable image file {str(path)!r}: {error}") from error
    return encode_png(rgb), size


def read_label_png(path: Path) -> Integer[np.ndarray, "h w"]:
    """A single-channel label PNG as an integer array [h, w] (uint8, or int32/uint16 for 16-bit files);
    ValueError naming the file if unreadable or not single-channel."""
    try:
        with Image.open(path) as image:
            if image.mode not in ("L", "P", "I", "I;16"):
                raise ValueError(f"label image {str(path)!r} has mode {image.mode!r}; expected one channel")
            return np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"corrupt or unreadable label image {str(path)!r}: {error}") from error


def _decode(encoded: bytes, mode: str, where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(encoded)) as image:
            return np.asarray(image if image.mode == mode else image.convert(mode))
    except _DECODE_ERRORS as error:
        raise ValueError(f"corrupt image in {where}: {error}") from error


def decode_rgb(encoded: bytes, *, where: str) -> UInt8[np.ndarray, "h w 3"]:
    """JPEG/PNG bytes -> uint8 [h, w, 3] (any PIL mode converted to RGB); ValueError naming `where` (e.g.
    `RecordSource.describe(index)`) when the bytes do not decode."""
    return _decode(encoded, "RGB", where)


def decode_gray(encoded: bytes, *, where: str) -> UInt8[np.ndarray, "h w"]:
    """PNG bytes of a single-channel image (a segmentation or instance mask) -> uint8 [h, w]; ValueError naming
    `where` when the bytes do not decode."""
    return _decode(encoded, "L", where)


def resize_image(
    image: UInt8[np.ndarray, "h w *c"], height: int, width: int, *, nearest: bool = False
) -> UInt8[np.ndarray, "_ _ *c"]:
    """uint8 [h, w] or [h, w, c] -> [height, width(, c)] with PIL: bilinear (antialiased when shrinking) for
    images, `nearest=True` for label masks (no new label values). Returned unchanged when the size matches."""
    if height < 1 or width < 1:
        raise ValueError(f"height={height}, width={width}; expected a positive size")
    if image.shape[:2] == (height, width):
        return image
    method = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(image).resize((width, height), method))

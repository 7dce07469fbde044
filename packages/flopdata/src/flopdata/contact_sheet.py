"""Contact sheets of scene datasets (the `fmnist_scenes` layout): image, semantic mask, and boxes with labels.

    sheet = contact_sheet("data/fmnist_scenes/1.0.0", count=8, scale=3)   # a PIL image
    write_contact_sheet("data/fmnist_scenes/1.0.0", "docs/fmnist_scenes.png")

Each example is a column of three panels: the scene, its semantic mask (one colour per class, black background),
and the scene with each object's box and instance-mask outline in the object's class colour and the class name.
The dataset needs `image`, `segmentation_mask` (0 = background, k = class k - 1) and `objects/{bbox, label, mask}`
with PNG masks, as `fmnist_scenes` writes them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from jaxtyping import Bool
from PIL import Image, ImageDraw

from .dataset_info import label_names
from .images import decode_gray, decode_rgb
from .records import RecordSource, parse_example

__all__ = ["PALETTE", "contact_sheet", "write_contact_sheet"]

# One distinct colour per class (index = class, repeating after 10); background black.
PALETTE = np.asarray(
    [
        (230, 25, 75),
        (60, 180, 75),
        (255, 225, 25),
        (0, 130, 200),
        (245, 130, 48),
        (145, 30, 180),
        (70, 240, 240),
        (240, 50, 230),
        (210, 245, 60),
        (250, 190, 190),
    ],
    np.uint8,
)
_REQUIRED = ("image", "segmentation_mask", "objects")
_GAP = 2  # pixels between panels (rows) and twice that between columns


def _outline(mask: Bool[np.ndarray, "h w"]) -> Bool[np.ndarray, "h w"]:
    """Pixels of `mask` with a 4-neighbour outside it."""
    padded = np.pad(mask, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def _colour(label: int) -> np.ndarray:
    return PALETTE[label % len(PALETTE)]


def _column(source: RecordSource, index: int, names: tuple[str, ...], scale: int) -> Image.Image:
    where = source.describe(index)
    fields = parse_example(source[index]["record"], where=where)
    image = decode_rgb(fields["image"][0], where=where)
    semantic = decode_gray(fields["segmentation_mask"][0], where=f"{where} segmentation_mask")
    labels = [int(v) for v in fields.get("objects/label", [])]
    boxes = np.asarray(fields.get("objects/bbox", []), np.float32).reshape(-1, 4)
    masks = [decode_gray(m, where=f"{where} object {i} mask") for i, m in enumerate(fields.get("objects/mask", []))]
    if not len(labels) == len(boxes) == len(masks):
        raise ValueError(f"{where}: {len(labels)} object labels, {len(boxes)} boxes and {len(masks)} masks")
    height, width = semantic.shape
    colour_mask = np.zeros_like(image)
    colour_mask[semantic > 0] = PALETTE[(semantic[semantic > 0].astype(np.int64) - 1) % len(PALETTE)]
    annotated = image.copy()
    for label, mask in zip(labels, masks, strict=True):
        annotated[_outline(mask > 0)] = _colour(label)
    size = (width * scale, height * scale)
    panels = [Image.fromarray(p).resize(size, Image.Resampling.NEAREST) for p in (image, colour_mask, annotated)]
    draw = ImageDraw.Draw(panels[2])
    for box, label in zip(boxes, labels, strict=True):
        ymin, xmin, ymax, xmax = (float(box[0]) * height * scale, float(box[1]) * width * scale,
                                  float(box[2]) * height * scale, float(box[3]) * width * scale)
        colour = tuple(int(c) for c in _colour(label))
        draw.rectangle([xmin, ymin, xmax - 1, ymax - 1], outline=colour, width=1)
        draw.text((xmin + 2, ymin + 1), names[label] if label < len(names) else str(label), fill=colour)
    column = Image.new("RGB", (size[0], 3 * size[1] + 2 * _GAP), (255, 255, 255))
    for row, panel in enumerate(panels):
        column.paste(panel, (0, row * (size[1] + _GAP)))
    return column


def contact_sheet(directory: str | Path, *, split: str = "train", count: int = 8, scale: int = 3) -> Image.Image:
    """A sheet of the first `count` examples of `split`, each panel upscaled `scale` times (nearest)."""
    if count < 1 or scale < 1:
        raise ValueError(f"count={count}, scale={scale}; expected positive integers")
    source = RecordSource(directory, split)
    missing = [name for name in _REQUIRED if name not in source.feature_names]
    if missing:
        raise ValueError(
            f"{str(directory)!r} lacks features {missing} for a contact sheet; it has {source.feature_names}"
        )
    if count > len(source):
        raise ValueError(f"count={count} but {directory} {split} has {len(source)} examples")
    names = label_names(directory, feature="objects/label")
    columns = [_column(source, index, names, scale) for index in range(count)]
    width, height = columns[0].size
    sheet = Image.new("RGB", (count * (width + 2 * _GAP) - 2 * _GAP, height), (255, 255, 255))
    for index, column in enumerate(columns):
        sheet.paste(column, (index * (width + 2 * _GAP), 0))
    return sheet


def write_contact_sheet(
    directory: str | Path, out: str | Path, *, split: str = "train", count: int = 8, scale: int = 3
) -> Path:
    """Renders `contact_sheet(...)` and writes it to `out` as a PNG, atomically (a temporary file in the same
    folder, then renamed): `out` is replaced, never left half-written."""
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"out={str(out)!r}; expected a .png path")
    sheet = contact_sheet(directory, split=split, count=count, scale=scale)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            sheet.save(stream, format="PNG", optimize=True)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return out

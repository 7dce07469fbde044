"""Render a PNG contact sheet of `fmnist_scenes` examples: image, semantic mask, and boxes with labels.

    python tools/contact_sheet.py [--directory DIR] [--count 8] [--scale 3] [--out docs/fmnist_scenes.png]

Without --directory it builds a small `fmnist_scenes` (200 examples) into the default data dir. Each example
is a column of three panels: the scene, its semantic mask (one colour per class, black background), and the
scene with each object's box and instance-mask outline in the object's class colour and the class word.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datasets  # noqa: E402
from datasets.fmnist_idx import CLASS_WORDS  # noqa: E402

# One distinct colour per Fashion-MNIST class (index = class); background black.
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


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of `mask` with a 4-neighbour outside it."""
    padded = np.pad(mask, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def render(example: dict, scale: int) -> Image.Image:
    image = example["image"]
    size = image.shape[0]
    semantic = example["segmentation_mask"][..., 0]
    colour_mask = np.zeros_like(image)
    colour_mask[semantic > 0] = PALETTE[semantic[semantic > 0] - 1]
    annotated = image.copy()
    for label, mask in zip(example["objects"]["label"], example["objects"]["mask"], strict=True):
        annotated[_outline(mask[..., 0] > 0)] = PALETTE[label]
    panels = [
        Image.fromarray(p).resize((size * scale, size * scale), Image.Resampling.NEAREST)
        for p in (image, colour_mask, annotated)
    ]
    draw = ImageDraw.Draw(panels[2])
    for box, label in zip(example["objects"]["bbox"], example["objects"]["label"], strict=True):
        ymin, xmin, ymax, xmax = (float(v) * size * scale for v in box)
        colour = tuple(int(c) for c in PALETTE[label])
        draw.rectangle([xmin, ymin, xmax - 1, ymax - 1], outline=colour, width=1)
        draw.text((xmin + 2, ymin + 1), CLASS_WORDS[label], fill=colour)
    column = Image.new("RGB", (size * scale, 3 * size * scale + 2 * 2), (255, 255, 255))
    for row, panel in enumerate(panels):
        column.paste(panel, (0, row * (size * scale + 2)))
    return column


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--directory", default=None, help="a built fmnist_scenes TFDS directory")
    parser.add_argument("--split", default="train")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--scale", type=int, default=3)
    parser.add_argument("--out", default=str(datasets.REPO_ROOT / "docs" / "fmnist_scenes.png"))
    args = parser.parse_args(argv)
    directory = args.directory or datasets.build("fmnist_scenes", num_examples=200, seed=0)
    source = tfds.builder_from_directory(str(directory)).as_data_source(args.split)
    if args.count > len(source):
        raise ValueError(f"--count={args.count} but {directory} {args.split} has {len(source)} examples")
    columns = [render(source[index], args.scale) for index in range(args.count)]
    width, height = columns[0].size
    sheet = Image.new("RGB", (args.count * (width + 4) - 4, height), (255, 255, 255))
    for index, column in enumerate(columns):
        sheet.paste(column, (index * (width + 4), 0))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB) from {directory}")
    return out


if __name__ == "__main__":
    main()

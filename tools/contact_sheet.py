"""Render a PNG contact sheet of `fmnist_scenes` examples: image, semantic mask, and boxes with labels.

    python tools/contact_sheet.py [--directory DIR] [--count 8] [--scale 3] [--out docs/fmnist_scenes.png]

Without --directory it uses (building if needed) a small `fmnist_scenes` (200 examples, seed 0) in the default
data dir. Each example is a column of three panels: the scene, its semantic mask (one colour per class, black
background), and the scene with each object's box and instance-mask outline in its class colour and the class
word (`flopdata.contact_sheet`). The output file is replaced atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import flopdata

DOCS = Path(__file__).resolve().parents[1] / "docs"


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--directory", default=None, help="a built fmnist_scenes TFDS directory")
    parser.add_argument("--split", default="train")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--scale", type=int, default=3)
    parser.add_argument("--out", default=str(DOCS / "fmnist_scenes.png"))
    args = parser.parse_args(argv)
    try:
        directory = args.directory or flopdata.build("fmnist_scenes", num_examples=200, seed=0)
        out = flopdata.write_contact_sheet(directory, args.out, split=args.split, count=args.count, scale=args.scale)
    except ValueError as error:
        parser.error(str(error))
    print(f"wrote {out} ({out.stat().st_size // 1024} KB) from {directory}")
    return out


if __name__ == "__main__":
    main()

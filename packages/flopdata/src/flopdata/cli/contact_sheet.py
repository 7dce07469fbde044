"""Render a PNG contact sheet of `fmnist_scenes` examples: image, semantic mask, and boxes with labels.

    flopwise-contact-sheet [--directory DIR] [--count 8] [--scale 3] [--out docs/fmnist_scenes.png]

Without --directory it uses (building if needed) a small `fmnist_scenes` (200 examples, seed 0) in the default
data dir. Each example is a column of three panels: the scene, its semantic mask (one colour per class, black
background), and the scene with each object's box and instance-mask outline in its class colour and the class
word (`flopdata.contact_sheet`). The output file is replaced atomically.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import flopcli

from ..build import build
from ..contact_sheet import write_contact_sheet


def build_parser() -> flopcli.ArgumentParser:
    parser = flopcli.ArgumentParser(description=__doc__)
    parser.add_argument("--directory", default=None, help="a built fmnist_scenes TFDS directory")
    parser.add_argument("--split", default="train")
    parser.add_argument("--count", type=flopcli.positive_int, default=8)
    parser.add_argument("--scale", type=flopcli.positive_int, default=3)
    parser.add_argument("--out", type=Path, default=Path("docs/fmnist_scenes.png"), help="a .png path")
    return parser


def body(args: argparse.Namespace) -> int:
    if args.out.suffix.lower() != ".png":
        raise flopcli.CommandError(f"--out {args.out}: expected a .png path")
    if args.directory is not None and not Path(args.directory).is_dir():
        raise flopcli.CommandError(f"--directory {args.directory}: no such directory")
    directory = args.directory or build("fmnist_scenes", num_examples=200, seed=0)
    out = write_contact_sheet(directory, args.out, split=args.split, count=args.count, scale=args.scale)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB) from {directory}")
    return flopcli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return flopcli.run(build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())

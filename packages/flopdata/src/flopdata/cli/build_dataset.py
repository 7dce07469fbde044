"""Build a dataset into a TFDS directory (array_record files) that grain reads without TensorFlow.

    flopwise-build-dataset fmnist_scenes --num-examples 10000
    flopwise-build-dataset ade20k --source /data/ADEChallengeData2016
    flopwise-build-dataset coco_instances --source /data/coco
    flopwise-build-dataset image_folder --source /data/my_images   # train.csv / train.jsonl, or train/CLASS/*.jpg

(also `python tools/build_dataset.py ...` in a checkout). Prints the directory to pass to
`tfds.builder_from_directory` or to the data pipelines (`flopdata.resolve`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import flopcli

from ..build import BUILDERS, build
from ..data_dir import DATA_ENV


def build_parser() -> flopcli.ArgumentParser:
    parser = flopcli.ArgumentParser(description=__doc__)
    parser.add_argument("name", choices=sorted(BUILDERS))
    parser.add_argument("--data-dir", default=None, help=f"output root (default ${DATA_ENV} or ./data)")
    parser.add_argument("--source", default=None, help="input folder (fmnist: the idx files; default Debian's)")
    parser.add_argument("--num-examples", type=flopcli.positive_int, default=None,
                        help="limit per split (fmnist: train size)")
    parser.add_argument("--seed", type=flopcli.non_negative_int, default=0)
    parser.add_argument("--image-size", type=flopcli.positive_int, default=None, help="fmnist sets only (default 64)")
    return parser


def body(args: argparse.Namespace) -> int:
    options = {"source": args.source, "num_examples": args.num_examples, "seed": args.seed}
    if args.image_size is not None:
        options["image_size"] = args.image_size
    start = time.perf_counter()
    directory = build(args.name, data_dir=args.data_dir, **options)
    print(f"built {args.name} in {time.perf_counter() - start:.1f} s: {directory}")
    return flopcli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return flopcli.run(build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())

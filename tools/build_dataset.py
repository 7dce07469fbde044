"""Build a dataset into a TFDS directory (array_record files) that grain reads without TensorFlow.

    python tools/build_dataset.py fmnist_scenes --num-examples 10000
    python tools/build_dataset.py ade20k --source /data/ADEChallengeData2016
    python tools/build_dataset.py coco_instances --source /data/coco
    python tools/build_dataset.py image_folder --source /data/my_images   # train.csv / train.jsonl inside

Prints the directory to pass to `tfds.builder_from_directory` or to the data pipelines (`flopdata.build`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import flopdata


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(flopdata.BUILDERS))
    parser.add_argument("--data-dir", default=None, help=f"output root (default ${flopdata.DATA_ENV} or ./data)")
    parser.add_argument("--source", default=None, help="input folder (fmnist: the idx files; default Debian's)")
    parser.add_argument("--num-examples", type=int, default=None, help="limit per split (fmnist: train size)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=None, help="fmnist sets only (default 64)")
    args = parser.parse_args(argv)
    options = {"source": args.source, "num_examples": args.num_examples, "seed": args.seed}
    if args.image_size is not None:
        options["image_size"] = args.image_size
    start = time.perf_counter()
    try:
        directory = flopdata.build(args.name, data_dir=args.data_dir, **options)
    except ValueError as error:
        parser.error(str(error))
    print(f"built {args.name} in {time.perf_counter() - start:.1f} s: {directory}")
    return directory


if __name__ == "__main__":
    main()

"""Build a dataset into a TFDS directory (array_record files) that grain reads without TensorFlow.

    python tools/build_dataset.py fmnist_scenes --num-examples 10000
    python tools/build_dataset.py ade20k --source /data/ADEChallengeData2016
    python tools/build_dataset.py coco_instances --source /data/coco
    python tools/build_dataset.py image_folder --source /data/my_images   # train.csv / train.jsonl inside

Prints the directory to pass to `tfds.builder_from_directory` or to the data pipelines.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datasets  # noqa: E402  (tools/datasets, importable once tools/ is on the path)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", choices=sorted(datasets.BUILDERS))
    parser.add_argument(
        "--data-dir", default=None, help="output root (default $FLOPWISE_DATA or <repo>/data)"
    )
    parser.add_argument(
        "--source", default=None, help="input folder (fmnist: the idx files; default Debian's)"
    )
    parser.add_argument("--num-examples", type=int, default=None, help="limit per split (fmnist: train size)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=None, help="fmnist sets only (default 64)")
    args = parser.parse_args(argv)
    options = {"source": args.source, "num_examples": args.num_examples, "seed": args.seed}
    if args.image_size is not None:
        if not args.name.startswith("fmnist"):
            parser.error(f"--image-size applies to the fmnist sets, not {args.name}")
        options["image_size"] = args.image_size
    start = time.perf_counter()
    directory = datasets.build(args.name, data_dir=args.data_dir, **options)
    print(f"built {args.name} in {time.perf_counter() - start:.1f} s: {directory}")
    return directory


if __name__ == "__main__":
    main()

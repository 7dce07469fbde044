"""Examples/s of the input pipelines on `fmnist_scenes` (builds a 10K-example set first if needed).

    python benchmarks/data_pipeline.py [--data-dir DIR] [--workers 0 2] [--batches 20]

Rows: the pre-training pipeline (64x64 scenes, batch 256) and the segmentation train pipeline (64x64 crops,
batch 64), for each worker count. The first batch (worker start-up) is not timed.
"""

from __future__ import annotations

import argparse
import time

import flopdata
from segtransfer.data import SegmentationData, segmentation_loader
from sslmethods.data import PretrainData, pretrain_loader


def examples_per_second(loader, batches: int) -> float:
    iterator = iter(loader)
    first = next(iterator)
    batch_size = len(next(iter(first.values())))
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    directory = str(flopdata.build("fmnist_scenes", data_dir=args.data_dir, num_examples=10000, seed=0))
    print(f"dataset: {directory}")
    print(f"{'pipeline':<34} {'workers':>7} {'examples/s':>11}")
    for workers in args.workers:
        pretrain = pretrain_loader(
            PretrainData(directory, batch_size=256, image_size=64, worker_count=workers)
        )
        rate = examples_per_second(pretrain, args.batches)
        print(f"{'pretrain 64x64 scenes, batch 256':<34} {workers:>7} {rate:>11.0f}")
        seg = segmentation_loader(
            SegmentationData(directory, batch_size=64, num_classes=11, crop_size=64, worker_count=workers)
        )
        rate = examples_per_second(seg, args.batches)
        print(f"{'segmentation train 64x64, batch 64':<34} {workers:>7} {rate:>11.0f}")


if __name__ == "__main__":
    main()

"""Input pipeline images/s streaming vs decoded in memory (`flopdata.DecodedSource`), at the demo's settings.

    python benchmarks/decoded_pipeline.py data/fmnist_objects/1.0.0 data/fmnist_scenes/1.0.0

Pre-training: `sslmethods.pretrain.data.pretrain_loader` at 32 px, batch 64, 100 batches; segmentation:
`segtransfer.segmentation.data.segmentation_loader` at 32 px, batch 16, no photometric jitter, 300 batches; each with
`decoded=False` (streaming), then twice with `decoded=True` (the first builds the decoded split and puts it in
`flopdata.MEMO`: its time is the "first batch"; the second finds it there). The batch after the first is where
timing starts. A script, not a test.
"""

import argparse
import time

import flopdata
from segtransfer.segmentation.data import SegmentationData, segmentation_loader
from sslmethods.pretrain.data import PretrainData, pretrain_loader


def rate(make, batch: int, batches: int) -> tuple[float, float]:
    start = time.perf_counter()
    iterator = iter(make())
    next(iterator)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch / (time.perf_counter() - start), first


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("objects", help="a built fmnist_objects directory (pre-training)")
    p.add_argument("scenes", help="a built fmnist_scenes directory (segmentation)")
    args = p.parse_args()
    classes = flopdata.num_segmentation_classes(args.scenes)
    for decoded in (False, True, True):
        r, first = rate(lambda d=decoded: pretrain_loader(PretrainData(args.objects, batch_size=64, image_size=32,
                                                                       decoded=d)), 64, 100)
        print(f"pre-training   decoded={decoded!s:5}: {r:8,.0f} images/s, first batch {first:.1f} s", flush=True)
        r, first = rate(lambda d=decoded: segmentation_loader(SegmentationData(
            args.scenes, batch_size=16, num_classes=classes, crop_size=32, photometric="none", decoded=d)), 16, 300)
        print(f"segmentation   decoded={decoded!s:5}: {r:8,.0f} images/s, first batch {first:.1f} s", flush=True)


if __name__ == "__main__":
    main()

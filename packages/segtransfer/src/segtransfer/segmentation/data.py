"""The segmentation input pipeline on grain (image + mask); detection's is `segtransfer.detection.data`.

Reads TFDS directories written by `flopdata.build` (`ade20k`, `fmnist_scenes`, `coco_instances`) through
array_record without TensorFlow (`flopdata.RecordSource`). Images come out float32 [b, s, s, 3] in [0, 1]
(the encoder normalises them itself).

Segmentation (`segmentation_loader`), records with `image` + `segmentation_mask`:
- train: random rescale by a factor from {0.5, 0.75, ..., 2.0} of a base size whose short side is `base_size`
  (mmseg `Resize(ratio_range=(0.5, 2.0))` with the study's 0.25 steps), random `crop_size` crop with the image
  padded by 0 and the mask by 255 (ignore) where the rescaled image is smaller, horizontal flip (p=0.5), and
  photometric jitter `photometric` (`segtransfer.segmentation.photometric`: the study's BYOL colour transform by
  default, mmseg's PhotoMetricDistortion as "mmseg"). mmseg's `cat_max_ratio` crop retry is not done.
- eval: short side resized to `crop_size`, then a centre `crop_size` crop (mask by nearest neighbour).
Output `mask` int32 [b, s, s]: class ids, 255 = ignore. Labels outside 0..num_classes-1 (other than 255)
raise a ValueError naming the example.

`decoded_loader`: training batches of the decoded, unaugmented uint8 images and masks of a split whose images
have one size, for `segtransfer.segmentation.device_augment` (the rescale, crop and flip above, inside the step).

Sharding, shuffling and batching are `segtransfer.record_loader`'s, which detection's loader shares.
"""

from __future__ import annotations

import dataclasses

import grain
import numpy as np
from flopdata import (
    DecodedSource,
    RecordSource,
    decode_gray,
    decode_rgb,
    parse_example,
    resize_image,
    use_decoded,
)

from ..record_loader import record_loader
from .photometric import PHOTOMETRIC

IGNORE_INDEX = 255
RESCALE_FACTORS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)


@dataclasses.dataclass(frozen=True)
class SegmentationData:
    """directory: TFDS dir with image + segmentation_mask; num_classes: labels 0..num_classes-1 (+255)."""

    directory: str
    batch_size: int
    num_classes: int
    split: str = "train"
    train: bool = True
    crop_size: int = 512
    base_size: int | None = None  # short side before the random rescale; default crop_size
    seed: int = 0
    num_epochs: int | None = None
    worker_count: int = 0
    shard_index: int | None = None
    shard_count: int | None = None
    photometric: str = "byol"  # a name of segtransfer.segmentation.photometric.PHOTOMETRIC (train only)
    # decode the split once per process and serve it from memory (`flopdata.DecodedSource`; augmentation stays
    # per epoch, the batches are the same); None = when its decoded size is below flopdata.DECODE_LIMIT_BYTES
    decoded: bool | None = None

    def __post_init__(self):
        if self.decoded is not None and not isinstance(self.decoded, bool):
            raise ValueError(f"decoded={self.decoded!r}; expected True, False or None (decide by size)")
        if self.photometric not in PHOTOMETRIC:
            raise ValueError(f"photometric={self.photometric!r}; expected one of {sorted(PHOTOMETRIC)}")
        for name in ("batch_size", "num_classes", "crop_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; expected a positive integer")
        if self.num_classes > IGNORE_INDEX:
            raise ValueError(f"num_classes={self.num_classes}; expected <= 255 (255 is the ignore label)")


def rescaled_shape(h: int, w: int, base: int, factor: float) -> tuple[int, int]:
    """The (height, width) a training image of (h, w) is rescaled to: short side ``base * factor``, rounded."""
    scale = base * factor / min(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def _crop_or_pad(image, mask, top, left, size):
    """Crop [top:top+size, left:left+size], padding image with 0 and mask with IGNORE_INDEX outside."""
    out_image = np.zeros((size, size, 3), image.dtype)
    out_mask = np.full((size, size), IGNORE_INDEX, mask.dtype)
    h, w = mask.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + size, h), min(left + size, w)
    out_image[y0 - top : y1 - top, x0 - left : x1 - left] = image[y0:y1, x0:x1]
    out_mask[y0 - top : y1 - top, x0 - left : x1 - left] = mask[y0:y1, x0:x1]
    return out_image, out_mask


class SegmentationTransform(grain.transforms.RandomMap):
    """Decode, check labels, augment (train) or centre-crop (eval)."""

    def __init__(self, source: RecordSource, config: SegmentationData):
        missing = {"image", "segmentation_mask"} - set(source.feature_names)
        if missing:
            raise ValueError(
                f"{source.directory!r} lacks features {sorted(missing)}; it has {source.feature_names}"
            )
        self.source, self.config = source, config

    def decode(self, element: dict) -> tuple[np.ndarray, np.ndarray]:
        where = self.source.describe(element["index"])
        fields = parse_example(element["record"], where=where)
        image = decode_rgb(fields["image"][0], where=where)
        mask = decode_gray(fields["segmentation_mask"][0], where=where + " mask")
        if mask.shape != image.shape[:2]:
            raise ValueError(f"{where}: mask is {mask.shape}, image is {image.shape[:2]}")
        bad = (mask >= self.config.num_classes) & (mask != IGNORE_INDEX)
        if bad.any():
            values = sorted(set(np.unique(mask[bad]).tolist()))[:5]
            raise ValueError(
                f"{where}: mask labels {values} are outside 0..{self.config.num_classes - 1} and "
                f"not {IGNORE_INDEX}; wrong num_classes={self.config.num_classes}?"
            )
        return image, mask

    def decode_arrays(self, element: dict) -> dict:
        """`decode` as {"image", "mask"}: the deterministic part a `flopdata.DecodedSource` holds."""
        image, mask = self.decode(element)
        return {"image": image, "mask": mask}

    def example_bytes(self) -> int | None:
        """Bytes of one decoded image + mask; None when the dataset's images vary in size."""
        shape = self.source.fixed_shape("image")
        return None if shape is None else shape[0] * shape[1] * 4

    def random_map(self, element: dict, rng: np.random.Generator) -> dict:
        return self.augment(*self.decode(element), rng)

    def augment(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> dict:
        """Random rescale, crop, flip and photometric jitter (train) or the centre crop (eval) of decoded arrays."""
        size = self.config.crop_size
        h, w = mask.shape
        if self.config.train:
            factor = RESCALE_FACTORS[int(rng.integers(len(RESCALE_FACTORS)))]
            nh, nw = rescaled_shape(h, w, self.config.base_size or size, factor)
            image, mask = resize_image(image, nh, nw), resize_image(mask, nh, nw, nearest=True)
            top = int(rng.integers(0, max(nh - size, 0) + 1))
            left = int(rng.integers(0, max(nw - size, 0) + 1))
            image, mask = _crop_or_pad(image, mask, top, left, size)
            if rng.random() < 0.5:
                image, mask = image[:, ::-1], mask[:, ::-1]
            pixels = PHOTOMETRIC[self.config.photometric](image.astype(np.float32) / np.float32(255.0), rng)
        else:
            scale = size / min(h, w)
            nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
            image, mask = resize_image(image, nh, nw), resize_image(mask, nh, nw, nearest=True)
            image, mask = _crop_or_pad(image, mask, (nh - size) // 2, (nw - size) // 2, size)
            pixels = image.astype(np.float32) / np.float32(255.0)
        return {"image": np.ascontiguousarray(pixels), "mask": np.ascontiguousarray(mask).astype(np.int32)}


class KeepDecoded(SegmentationTransform):
    """Decoded arrays as they are (uint8 image [h, w, 3], uint8 mask [h, w]): the host side of the device path."""

    def random_map(self, element: dict, rng: np.random.Generator) -> dict:
        arrays = element if "record" not in element else self.decode_arrays(element)
        return {"image": arrays["image"], "mask": arrays["mask"]}


class AugmentDecoded(SegmentationTransform):
    """`SegmentationTransform` over elements a `flopdata.DecodedSource` already decoded ({"image", "mask"})."""

    def random_map(self, element: dict, rng: np.random.Generator) -> dict:
        return self.augment(element["image"], element["mask"], rng)


def segmentation_loader(config: SegmentationData) -> grain.DataLoader:
    """Batches {"image": float32 [b, s, s, 3], "mask": int32 [b, s, s]}; eval runs one ordered epoch (last
    batch may be smaller); train shuffles from `seed` and repeats `num_epochs` (None = forever). Small splits
    are decoded once per process and served from memory (`config.decoded`); the batches are the same."""
    source = RecordSource(config.directory, config.split)
    transform = SegmentationTransform(source, config)
    if not use_decoded(config.decoded, len(source), transform.example_bytes()):
        return record_loader(source, config, transform)
    decoded = DecodedSource(source, transform.decode_arrays, key=("segmentation", config.num_classes))
    return record_loader(decoded, config, AugmentDecoded(source, config))


def decoded_loader(config: SegmentationData) -> grain.DataLoader:
    """Training batches of decoded, unaugmented examples {"image": uint8 [b, h, w, 3], "mask": uint8 [b, h, w]}
    (shuffled and repeated as `segmentation_loader`'s) for a split whose images have one size: the host side of
    `segtransfer.segmentation.device_augment`, which rescales, crops and flips them inside the step."""
    source = RecordSource(config.directory, config.split)
    transform = KeepDecoded(source, config)
    if source.fixed_shape("image") is None:
        raise ValueError(f"{config.directory!r} {config.split}: the images vary in size; decoded batches need one")
    if not use_decoded(config.decoded, len(source), transform.example_bytes()):
        return record_loader(source, config, transform)
    decoded = DecodedSource(source, transform.decode_arrays, key=("segmentation", config.num_classes))
    return record_loader(decoded, config, transform)


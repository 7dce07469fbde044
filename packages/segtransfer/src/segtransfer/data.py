"""Transfer input pipelines on grain: segmentation (image + mask) and detection (image + padded instances).

Reads TFDS directories written by `flopdata.build` (`ade20k`, `fmnist_scenes`, `coco_instances`) through
array_record without TensorFlow (`flopdata.RecordSource`). Images come out float32 [b, s, s, 3] in [0, 1]
(the encoder normalises them itself).

Segmentation (`segmentation_loader`), records with `image` + `segmentation_mask`:
- train: random rescale by a factor from {0.5, 0.75, ..., 2.0} of a base size whose short side is `base_size`
  (mmseg `Resize(ratio_range=(0.5, 2.0))` with the study's 0.25 steps), random `crop_size` crop with the image
  padded by 0 and the mask by 255 (ignore) where the rescaled image is smaller, horizontal flip (p=0.5), and
  photometric jitter `photometric` (`segtransfer.photometric`: the study's BYOL colour transform by default,
  mmseg's PhotoMetricDistortion as "mmseg"). mmseg's `cat_max_ratio` crop retry is not done.
- eval: short side resized to `crop_size`, then a centre `crop_size` crop (mask by nearest neighbour).
Output `mask` int32 [b, s, s]: class ids, 255 = ignore. Labels outside 0..num_classes-1 (other than 255)
raise a ValueError naming the example.

Detection (`detection_loader`), records with `image` + `objects/{bbox,label,mask}`: longest side resized to
`image_size`, padded (bottom/right) to a square, optional flip; `boxes` float32 [b, m, 4] in output pixels
(ymin, xmin, ymax, xmax), `labels` int32 [b, m] (-1 = padding), `masks` uint8 [b, m, s, s], `num_objects`,
`scale` (output pixels per input pixel). Objects beyond `max_objects` are dropped (first kept, as stored).
"""

from __future__ import annotations

import dataclasses

import grain
import jax
import numpy as np
from flopdata import (
    RecordSource,
    allow_worker_processes,
    decode_gray,
    decode_rgb,
    parse_example,
    read_options,
    resize_image,
)

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
    photometric: str = "byol"  # a name of segtransfer.photometric.PHOTOMETRIC (train only)

    def __post_init__(self):
        if self.photometric not in PHOTOMETRIC:
            raise ValueError(f"photometric={self.photometric!r}; expected one of {sorted(PHOTOMETRIC)}")
        for name in ("batch_size", "num_classes", "crop_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; expected a positive integer")
        if self.num_classes > IGNORE_INDEX:
            raise ValueError(f"num_classes={self.num_classes}; expected <= 255 (255 is the ignore label)")


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

    def random_map(self, element: dict, rng: np.random.Generator) -> dict:
        image, mask = self.decode(element)
        size = self.config.crop_size
        h, w = mask.shape
        if self.config.train:
            base = self.config.base_size or size
            factor = RESCALE_FACTORS[int(rng.integers(len(RESCALE_FACTORS)))]
            scale = base * factor / min(h, w)
            nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
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


def _loader(source, config, transform) -> grain.DataLoader:
    if config.shard_count is None:
        index, count = jax.process_index(), jax.process_count()
    else:
        index, count = config.shard_index, config.shard_count
    if config.batch_size % count:
        raise ValueError(f"batch_size={config.batch_size} does not split over {count} processes")
    if config.worker_count:
        allow_worker_processes()
    sampler = grain.samplers.IndexSampler(
        num_records=len(source),
        shard_options=grain.sharding.ShardOptions(shard_index=index, shard_count=count, drop_remainder=True),
        shuffle=config.train,
        num_epochs=config.num_epochs if config.train else (config.num_epochs or 1),
        seed=config.seed,
    )
    return grain.DataLoader(
        data_source=source,
        sampler=sampler,
        operations=[
            transform,
            grain.transforms.Batch(config.batch_size // count, drop_remainder=config.train),
        ],
        worker_count=config.worker_count,
        read_options=read_options(config.batch_size // count),
    )


def segmentation_loader(config: SegmentationData) -> grain.DataLoader:
    """Batches {"image": float32 [b, s, s, 3], "mask": int32 [b, s, s]}; eval runs one ordered epoch (last
    batch may be smaller); train shuffles from `seed` and repeats `num_epochs` (None = forever)."""
    source = RecordSource(config.directory, config.split)
    return _loader(source, config, SegmentationTransform(source, config))


@dataclasses.dataclass(frozen=True)
class DetectionData:
    """directory: TFDS dir with image + objects/{bbox,label} (+ objects/mask as PNGs or COCO RLE strings)."""

    directory: str
    batch_size: int
    split: str = "train"
    train: bool = True
    image_size: int = 1024
    max_objects: int = 100
    seed: int = 0
    num_epochs: int | None = None
    worker_count: int = 0
    shard_index: int | None = None
    shard_count: int | None = None

    def __post_init__(self):
        for name in ("batch_size", "image_size", "max_objects"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; expected a positive integer")


class DetectionTransform(grain.transforms.RandomMap):
    """Decode, resize longest side + pad to a square, flip (train), pad instances to max_objects."""

    def __init__(self, source: RecordSource, config: DetectionData):
        missing = {"image", "objects"} - set(source.feature_names)
        if missing:
            raise ValueError(
                f"{source.directory!r} lacks features {sorted(missing)}; it has {source.feature_names}"
            )
        self.source, self.config = source, config

    def _masks(self, fields, count, height, width, where) -> np.ndarray:
        encoded = fields.get("objects/mask", [])[:count]
        masks = np.zeros((count, height, width), np.uint8)
        for i, item in enumerate(encoded):
            if item[:4] == b"\x89PNG":
                masks[i] = decode_gray(item, where=f"{where} object {i} mask") > 0
            else:  # COCO compressed RLE counts (coco_instances)
                from pycocotools import mask as mask_utils

                masks[i] = mask_utils.decode({"size": [height, width], "counts": item})
        return masks

    def random_map(self, element: dict, rng: np.random.Generator) -> dict:
        where = self.source.describe(element["index"])
        fields = parse_example(element["record"], where=where)
        image = decode_rgb(fields["image"][0], where=where)
        h, w = image.shape[:2]
        count = min(len(fields.get("objects/label", [])), self.config.max_objects)
        boxes = np.asarray(fields.get("objects/bbox", []), np.float32).reshape(-1, 4)[:count]
        boxes = boxes * np.asarray([h, w, h, w], np.float32)
        masks = self._masks(fields, count, h, w, where)
        size = self.config.image_size
        scale = size / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        canvas = np.zeros((size, size, 3), np.uint8)
        canvas[:nh, :nw] = resize_image(image, nh, nw)
        out_masks = np.zeros((self.config.max_objects, size, size), np.uint8)
        for i in range(count):
            out_masks[i, :nh, :nw] = resize_image(masks[i], nh, nw, nearest=True)
        boxes = boxes * np.float32(scale)
        if self.config.train and rng.random() < 0.5:
            canvas, out_masks = canvas[:, ::-1], out_masks[:, :, ::-1]
            boxes = np.stack([boxes[:, 0], size - boxes[:, 3], boxes[:, 2], size - boxes[:, 1]], -1)
        labels = np.full((self.config.max_objects,), -1, np.int32)
        labels[:count] = fields["objects/label"][:count]
        out_boxes = np.zeros((self.config.max_objects, 4), np.float32)
        out_boxes[:count] = boxes
        out = {
            "image": np.ascontiguousarray(canvas).astype(np.float32) / np.float32(255.0),
            "boxes": out_boxes,
            "labels": labels,
            "masks": np.ascontiguousarray(out_masks),
            "num_objects": np.int32(count),
            "scale": np.float32(scale),
        }
        if "objects/is_crowd" in fields:
            crowd = np.zeros((self.config.max_objects,), bool)
            crowd[:count] = np.asarray(fields["objects/is_crowd"][:count], bool)
            out["is_crowd"] = crowd
        if "image/id" in fields:
            out["image_id"] = np.int64(fields["image/id"][0])
        return out


def detection_loader(config: DetectionData) -> grain.DataLoader:
    """Batches of padded detection examples (see the module docstring for the fields)."""
    source = RecordSource(config.directory, config.split)
    return _loader(source, config, DetectionTransform(source, config))

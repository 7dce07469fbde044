"""Transfer input pipelines on grain: segmentation (image + mask); detection lives in `segtransfer.detection.data`.

Reads TFDS directories written by `tools/build_dataset.py` (`ade20k`, `fmnist_scenes`, `coco_instances`)
through array_record without TensorFlow. Images come out float32 [b, s, s, 3] in [0, 1] (normalise on device).

Segmentation (`segmentation_loader`), records with `image` + `segmentation_mask`:
- train: random rescale by a factor from {0.5, 0.75, ..., 2.0} of a base size whose short side is `base_size`
  (mmseg `Resize(ratio_range=(0.5, 2.0))` with the study's 0.25 steps), random `crop_size` crop with the image
  padded by 0 and the mask by 255 (ignore) where the rescaled image is smaller, horizontal flip (p=0.5), and
  mmseg's PhotoMetricDistortion (brightness +-32/255, contrast and saturation x[0.5, 1.5], hue +-0.1 turn,
  each with p=0.5). mmseg's `cat_max_ratio` crop retry is not done.
- eval: short side resized to `crop_size`, then a centre `crop_size` crop (mask by nearest neighbour).
Output `mask` int32 [b, s, s]: class ids, 255 = ignore. Labels outside 0..num_classes-1 (other than 255)
raise a ValueError naming the example.

Detection (`segtransfer.detection.detection_loader`) reuses `RecordSource`, `parse_example` and the loader here.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import grain
import jax
import numpy as np
import tensorflow_datasets as tfds
from jaxtyping import Float32, UInt8
from PIL import Image, UnidentifiedImageError
from tensorflow_datasets.proto import tf_example_pb2

IGNORE_INDEX = 255
RESCALE_FACTORS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)


def parse_example(raw: bytes) -> dict[str, list]:
    """A serialized tf.train.Example as {flat feature name: list of values}."""
    example = tf_example_pb2.Example.FromString(raw)
    return {
        key: list(getattr(f, f.WhichOneof("kind")).value) if f.WhichOneof("kind") else []
        for key, f in example.features.feature.items()
    }


def decode_png_or_jpeg(encoded: bytes, *, where: str, mode: str) -> UInt8[np.ndarray, "h w *c"]:
    """Bytes -> uint8 array in PIL `mode` ("RGB" or "L"); ValueError naming `where` if corrupt."""
    try:
        with Image.open(io.BytesIO(encoded)) as image:
            return np.asarray(image.convert(mode) if image.mode != mode else image)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"corrupt image in {where}: {error}") from error


def _resize(array: np.ndarray, height: int, width: int, *, nearest: bool) -> np.ndarray:
    if array.shape[:2] == (height, width):
        return array
    method = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(array).resize((width, height), method))


class RecordSource:
    """Grain random-access source over a TFDS split; element i is {"record": bytes, "index": i}."""

    def __init__(self, directory: str | Path, split: str):
        self.directory, self.split = str(directory), split
        builder = tfds.builder_from_directory(self.directory)
        if split not in builder.info.splits:
            raise ValueError(
                f"split={split!r} is not in {self.directory!r}; it has {sorted(builder.info.splits)}"
            )
        self.name = builder.info.name
        self.feature_names = tuple(builder.info.features.keys())
        self.metadata = dict(builder.info.metadata or {})
        self._length = builder.info.splits[split].num_examples
        self._records = None

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index) -> dict:
        if self._records is None:
            self._records = tfds.builder_from_directory(self.directory).as_data_source(
                self.split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES
            )
        return {"record": self._records[int(index)], "index": int(index)}

    def describe(self, index: int) -> str:
        return f"{self.name} {self.split}[{index}] ({self.directory})"

    def __repr__(self) -> str:
        # grain checks a restored iterator state against repr(data_source): keep it stable across processes.
        return f"RecordSource(directory={self.directory!r}, split={self.split!r})"

    def __getstate__(self):
        return {**self.__dict__, "_records": None}


def photometric_distortion(
    image: Float32[np.ndarray, "h w 3"], rng: np.random.Generator, *, probability: float = 0.5
) -> Float32[np.ndarray, "h w 3"]:
    """mmseg PhotoMetricDistortion on float32 [h, w, 3] in [0, 1]: brightness, contrast, saturation, hue."""
    image = image.copy()
    if rng.random() < probability:
        image = image + np.float32(rng.uniform(-32.0, 32.0) / 255.0)
    if rng.random() < probability:
        image = image * np.float32(rng.uniform(0.5, 1.5))
    image = np.clip(image, 0.0, 1.0)
    if rng.random() < probability:
        gray = image @ np.asarray([0.299, 0.587, 0.114], np.float32)
        factor = np.float32(rng.uniform(0.5, 1.5))
        image = np.clip(gray[..., None] + (image - gray[..., None]) * factor, 0.0, 1.0)
    if rng.random() < probability:
        image = _shift_hue(image, np.float32(rng.uniform(-0.1, 0.1)))
    return image.astype(np.float32)


def _shift_hue(image: np.ndarray, delta: np.float32) -> np.ndarray:
    """Rotate hue by `delta` turns (HSV, vectorised colorsys.rgb_to_hsv / hsv_to_rgb)."""
    maxc, minc = image.max(-1), image.min(-1)
    span = maxc - minc
    safe = np.where(span > 0, span, np.float32(1.0))
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    hue = np.where(r == maxc, bc - gc, np.where(g == maxc, 2.0 + rc - bc, 4.0 + gc - rc))
    hue = np.where(span > 0, (hue / 6.0) % 1.0, 0.0)
    sat = np.where(maxc > 0, span / np.where(maxc > 0, maxc, 1.0), 0.0)
    hue = (hue + delta) % 1.0
    i = np.floor(hue * 6.0)
    f = hue * 6.0 - i
    p, q, t = maxc * (1 - sat), maxc * (1 - sat * f), maxc * (1 - sat * (1 - f))
    i = i.astype(np.int64) % 6
    v = maxc
    out_r = np.choose(i, [v, q, p, p, t, v])
    out_g = np.choose(i, [t, v, v, q, p, p])
    out_b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([out_r, out_g, out_b], -1).astype(np.float32)


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

    def __post_init__(self):
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
        fields = parse_example(element["record"])
        image = decode_png_or_jpeg(fields["image"][0], where=where, mode="RGB")
        mask = decode_png_or_jpeg(fields["segmentation_mask"][0], where=where + " mask", mode="L")
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
            image, mask = _resize(image, nh, nw, nearest=False), _resize(mask, nh, nw, nearest=True)
            top = int(rng.integers(0, max(nh - size, 0) + 1))
            left = int(rng.integers(0, max(nw - size, 0) + 1))
            image, mask = _crop_or_pad(image, mask, top, left, size)
            if rng.random() < 0.5:
                image, mask = image[:, ::-1], mask[:, ::-1]
            pixels = photometric_distortion(image.astype(np.float32) / np.float32(255.0), rng)
        else:
            scale = size / min(h, w)
            nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
            image, mask = _resize(image, nh, nw, nearest=False), _resize(mask, nh, nw, nearest=True)
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
        # Grain's workers read absl flags; outside an absl app mark them parsed with their defaults.
        from absl import flags

        if not flags.FLAGS.is_parsed():
            flags.FLAGS.mark_as_parsed()
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
    )


def segmentation_loader(config: SegmentationData) -> grain.DataLoader:
    """Batches {"image": float32 [b, s, s, 3], "mask": int32 [b, s, s]}; eval runs one ordered epoch (last
    batch may be smaller); train shuffles from `seed` and repeats `num_epochs` (None = forever)."""
    source = RecordSource(config.directory, config.split)
    return _loader(source, config, SegmentationTransform(source, config))

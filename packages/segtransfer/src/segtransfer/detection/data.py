"""Detection input pipeline on grain: decode, clean, large-scale jitter, pad to fixed shapes.

Reads TFDS directories with ``image`` + ``objects/{bbox,label}`` (+ ``objects/mask`` as PNGs or COCO RLE strings,
``objects/is_crowd``, ``image/id``): ``fmnist_scenes`` and ``coco_instances`` from `flopdata.build`.

Per example (all shapes fixed; ``S = image_size``, ``M = max_objects``, ``G = mask_size``):
- ``image`` float32 [S, S, 3]: pixels in [0, 1] (the encoder normalises them itself with its config's mean/std,
  docs/design.md section 2), padded below/right with ``pad_value``. Pass the encoder's ``mean`` there and the padding
  is 0 after the encoder's normalisation, as detectron2 pads normalised images.
- ``boxes`` float32 [M, 4] ``x1 y1 x2 y2`` in output pixels; ``classes`` int32 [M] (-1 = padding); ``valid`` bool
  [M].
- ``masks`` uint8 [M, G, G]: each object's mask *inside its box*, resampled to G x G (0..255, area average): the
  box-relative form `segtransfer.detection.mask_targets` reads. A padded batch then costs ``M * G * G`` bytes per
  image rather than ``M * S * S`` (6.7 GB for a 64 x 1024^2 batch with M = 100).
- ``image_hw`` int32 [2]: the unpadded image's size in output pixels (proposals and detections are clipped to it);
  ``original_hw`` int32 [2]; ``image_id`` int64 (``image/id`` when the records have it, else the record index,
  the id `coco_ground_truth` uses); ``dropped`` int32: objects removed as bad input; ``truncated`` int32.

Geometry. Train (ViTDet's LSJ): horizontal flip (p = 0.5), resize so the image fits in a square of side
``S * u``, ``u ~ U(min_scale, max_scale)`` (detectron2 ``ResizeScale``), then a random ``S x S`` crop where the
image is larger (one uniform fraction for both axes, detectron2 ``FixedSizeCrop``) and padding where it is
smaller. Boxes are scaled, shifted and clipped to the crop; objects whose box becomes empty are dropped (normal
augmentation, not counted). Eval: longest side resized to S (detectron2's ``ResizeShortestEdge(S, max_size=S)``
for square S), padded.

Bad input: boxes are clipped to the image; boxes with zero width or height after clipping are dropped and
counted in ``dropped``; images without objects are fine (all ``valid`` False); crowd objects (``is_crowd``) are
left out of training targets (detectron2 does the same; evaluation keeps them through `coco_ground_truth`). More
than ``max_objects`` objects raises a ValueError naming the image, or with ``truncate=True`` keeps the first
``max_objects`` (record order) and counts the rest in ``truncated``. All checks run on the host, before batching.
"""

from __future__ import annotations

import dataclasses

import grain
import numpy as np
from flopdata import RecordSource, decode_gray, decode_rgb, parse_example, resize_image
from PIL import Image
from pycocotools import mask as mask_utils

from ..record_loader import record_loader

__all__ = ["DetectionData", "DetectionTransform", "detection_loader", "image_id_of", "decode_object_masks"]


@dataclasses.dataclass(frozen=True)
class DetectionData:
    """Where to read and how to shape detection batches (see the module docstring for the fields)."""

    directory: str
    batch_size: int
    split: str = "train"
    train: bool = True
    image_size: int = 1024
    max_objects: int = 100
    mask_size: int = 56
    min_scale: float = 0.1
    max_scale: float = 2.0
    pad_value: tuple[float, float, float] = (0.0, 0.0, 0.0)
    truncate: bool = False
    seed: int = 0
    num_epochs: int | None = None
    worker_count: int = 0
    shard_index: int | None = None
    shard_count: int | None = None

    def __post_init__(self):
        for name in ("batch_size", "image_size", "max_objects", "mask_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}; expected a positive integer")
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(
                f"min_scale={self.min_scale!r}, max_scale={self.max_scale!r}; expected 0 < min_scale <= max_scale"
            )
        if len(self.pad_value) != 3 or not all(0.0 <= v <= 1.0 for v in self.pad_value):
            raise ValueError(f"pad_value={self.pad_value!r}; expected 3 values in [0, 1] (an RGB colour)")


def image_id_of(fields: dict, index: int) -> int:
    """The id an example is evaluated under: ``image/id`` when the records carry it, else the record index."""
    ids = fields.get("image/id", [])
    return int(ids[0]) if ids else int(index)


def decode_object_masks(fields: dict, count: int, height: int, width: int, where: str) -> np.ndarray:
    """uint8 0/1 [count, height, width] full-image masks of the first ``count`` objects (PNG or COCO RLE);
    zeros when the records have no masks."""
    encoded = fields.get("objects/mask", [])[:count]
    masks = np.zeros((count, height, width), np.uint8)
    for i, item in enumerate(encoded):
        if item[:4] == b"\x89PNG":
            masks[i] = decode_gray(item, where=f"{where} object {i} mask") > 0
        else:  # COCO compressed RLE counts (coco_instances)
            masks[i] = mask_utils.decode({"size": [height, width], "counts": item})
    return masks


def _box_relative(mask: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """The region ``box`` (x1 y1 x2 y2, source pixels, floats) of a 0/1 mask resampled to ``size x size``.

    PIL's box filter: each cell averages the source pixels whose centres fall in it (nearest pixel when
    upsampling), so no pixel outside the box leaks in (a bilinear filter's support would blur the edges)."""
    image = Image.fromarray(mask * np.uint8(255))
    x1, y1, x2, y2 = (float(v) for v in box)
    return np.asarray(image.resize((size, size), Image.Resampling.BOX, box=(x1, y1, x2, y2)))


class DetectionTransform(grain.transforms.RandomMap):
    """Decode one record, clean its objects, apply LSJ (train) or resize (eval), pad to fixed shapes."""

    def __init__(self, source: RecordSource, config: DetectionData):
        missing = {"image", "objects"} - set(source.feature_names)
        if missing:
            raise ValueError(
                f"{source.directory!r} lacks features {sorted(missing)}; it has {source.feature_names}"
            )
        self.source, self.config = source, config

    def _objects(self, fields: dict, h: int, w: int, where: str):
        labels = np.asarray(fields.get("objects/label", []), np.int64)
        boxes = np.asarray(fields.get("objects/bbox", []), np.float32).reshape(-1, 4)  # ymin xmin ymax xmax, [0, 1]
        if len(boxes) != len(labels):
            raise ValueError(f"{where}: {len(boxes)} boxes but {len(labels)} labels")
        boxes = boxes[:, [1, 0, 3, 2]] * np.asarray([w, h, w, h], np.float32)
        boxes = np.clip(boxes, 0.0, np.asarray([w, h, w, h], np.float32))
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        dropped = int((~keep).sum())
        crowd = np.asarray(fields.get("objects/is_crowd", [0] * len(labels)), bool)
        if self.config.train:
            keep &= ~crowd
        index = np.nonzero(keep)[0]
        truncated = max(len(index) - self.config.max_objects, 0)
        if truncated and not self.config.truncate:
            raise ValueError(
                f"{where}: {len(index)} objects, more than max_objects={self.config.max_objects}; raise "
                "max_objects or pass truncate=True to keep the first max_objects"
            )
        return index[: self.config.max_objects], boxes, labels, dropped, truncated

    def random_map(self, element: dict, rng: np.random.Generator) -> dict:
        c = self.config
        where = self.source.describe(element["index"])
        fields = parse_example(element["record"], where=where)
        image = decode_rgb(fields["image"][0], where=where)
        h, w = image.shape[:2]
        index, boxes, labels, dropped, truncated = self._objects(fields, h, w, where)
        masks = decode_object_masks(fields, len(labels), h, w, where)[index]
        boxes, labels = boxes[index], labels[index]
        size = c.image_size
        if c.train:
            if rng.random() < 0.5:
                image, masks = image[:, ::-1], masks[:, :, ::-1]
                boxes = np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], -1)
            target = size * rng.uniform(c.min_scale, c.max_scale)
            factor = min(target / h, target / w)
            nh, nw = max(1, int(round(h * factor))), max(1, int(round(w * factor)))
            fraction = rng.uniform(0.0, 1.0)
            oy, ox = int(round(max(nh - size, 0) * fraction)), int(round(max(nw - size, 0) * fraction))
        else:
            factor = size / max(h, w)
            nh, nw = max(1, int(round(h * factor))), max(1, int(round(w * factor)))
            oy = ox = 0
        sy, sx = nh / h, nw / w  # exact per-axis factors after rounding
        valid_h, valid_w = min(size, nh - oy), min(size, nw - ox)
        resized = resize_image(np.ascontiguousarray(image), nh, nw)[oy : oy + valid_h, ox : ox + valid_w]
        out_boxes = boxes * np.asarray([sx, sy, sx, sy], np.float32) - np.asarray([ox, oy, ox, oy], np.float32)
        out_boxes = np.clip(out_boxes, 0.0, np.asarray([valid_w, valid_h, valid_w, valid_h], np.float32))
        alive = (out_boxes[:, 2] > out_boxes[:, 0]) & (out_boxes[:, 3] > out_boxes[:, 1])
        out_boxes, labels, masks = out_boxes[alive], labels[alive], masks[alive]
        # The kept part of each box, back in source pixels, is the region its box-relative mask covers.
        source_boxes = (out_boxes + np.asarray([ox, oy, ox, oy], np.float32)) / np.asarray([sx, sy, sx, sy], np.float32)
        n, m = len(labels), c.max_objects
        out = {
            "image": np.broadcast_to(np.asarray(c.pad_value, np.float32), (size, size, 3)).copy(),
            "boxes": np.zeros((m, 4), np.float32),
            "classes": np.full((m,), -1, np.int32),
            "masks": np.zeros((m, c.mask_size, c.mask_size), np.uint8),
            "valid": np.zeros((m,), bool),
            "image_hw": np.asarray([valid_h, valid_w], np.int32),
            "original_hw": np.asarray([h, w], np.int32),
            "image_id": np.int64(image_id_of(fields, element["index"])),
            "dropped": np.int32(dropped),
            "truncated": np.int32(truncated),
        }
        out["image"][:valid_h, :valid_w] = resized.astype(np.float32) / np.float32(255.0)
        out["boxes"][:n] = out_boxes
        out["classes"][:n] = labels
        out["valid"][:n] = True
        for i in range(n):
            out["masks"][i] = _box_relative(masks[i], source_boxes[i], c.mask_size)
        return out


def detection_loader(config: DetectionData) -> grain.DataLoader:
    """Batches of `DetectionTransform` examples (see the module docstring); eval runs one ordered epoch (the
    last batch may be smaller), train shuffles from ``seed`` and repeats ``num_epochs`` (None = forever)."""
    source = RecordSource(config.directory, config.split)
    return record_loader(source, config, DetectionTransform(source, config))

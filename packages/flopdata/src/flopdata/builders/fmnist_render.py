"""Rendering of Fashion-MNIST items into RGB object and scene images (numpy + PIL, deterministic from an
rng)."""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import Integer, UInt8
from PIL import Image

# A pixel belongs to an item where its resized intensity is above this (alpha in [0, 1]).
MASK_THRESHOLD = 0.3
# Items whose visible (unoccluded) area is smaller than this many pixels are dropped from the annotations.
MIN_VISIBLE_PIXELS = 8


def _resize_alpha(item: np.ndarray, size: int) -> np.ndarray:
    resized = Image.fromarray(item).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32) / 255.0


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def render_object(
    item: UInt8[np.ndarray, "ih iw"], image_size: int, rng: np.random.Generator
) -> UInt8[np.ndarray, "s s 3"]:
    """One 28x28 item centred (small random scale and shift), tinted, on a plain background: uint8 [s, s,
    3]."""
    dark_background = rng.random() < 0.5
    # Background and tint come from opposite brightness ranges so the item always stands out.
    background = rng.uniform(0.0, 0.3, 3) if dark_background else rng.uniform(0.7, 1.0, 3)
    tint = rng.uniform(0.6, 1.0, 3) if dark_background else rng.uniform(0.0, 0.4, 3)
    size = int(round(image_size * rng.uniform(0.7, 0.95)))
    max_shift = int(round(image_size * 0.06))
    top = (image_size - size) // 2 + int(rng.integers(-max_shift, max_shift + 1))
    left = (image_size - size) // 2 + int(rng.integers(-max_shift, max_shift + 1))
    top, left = int(np.clip(top, 0, image_size - size)), int(np.clip(left, 0, image_size - size))
    alpha = np.zeros((image_size, image_size, 1), np.float32)
    alpha[top : top + size, left : left + size, 0] = _resize_alpha(item, size)
    canvas = background[None, None, :] * (1.0 - alpha) + tint[None, None, :] * alpha
    return _to_uint8(canvas)


def _texture(image_size: int, rng: np.random.Generator) -> np.ndarray:
    """Stripes at a random angle and frequency plus pixel noise, around a random base colour: float [s, s,
    3]."""
    base = rng.uniform(0.15, 0.85, 3)
    second = np.clip(base + rng.uniform(-0.25, 0.25, 3), 0.0, 1.0)
    angle = rng.uniform(0.0, np.pi)
    frequency = rng.uniform(2.0, 8.0) * 2.0 * np.pi / image_size
    yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float32)
    wave = 0.5 + 0.5 * np.sin(
        frequency * (np.cos(angle) * xx + np.sin(angle) * yy) + rng.uniform(0, 2 * np.pi)
    )
    texture = base[None, None, :] * (1.0 - wave[..., None]) + second[None, None, :] * wave[..., None]
    return texture + rng.normal(0.0, 0.03, (image_size, image_size, 3))


@dataclasses.dataclass(frozen=True)
class Scene:
    """A rendered scene. `objects_*` hold only items with at least MIN_VISIBLE_PIXELS visible pixels."""

    image: np.ndarray  # uint8 [s, s, 3]
    semantic_mask: np.ndarray  # uint8 [s, s]: 0 background, 1..10 = class + 1
    labels: list[int]  # distinct classes, by visible area (largest first)
    objects_bbox: np.ndarray  # float32 [n, 4] normalised (ymin, xmin, ymax, xmax), TFDS BBox order
    objects_label: list[int]  # class of each object
    objects_mask: np.ndarray  # uint8 [n, s, s] visible-part masks, 0/1


def render_scene(
    items: UInt8[np.ndarray, "k ih iw"], labels: Integer[np.ndarray, " k"], image_size: int, rng: np.random.Generator
) -> Scene:
    """Items [k, 28, 28] with labels [k], painted in order (later items occlude earlier ones) on a texture."""
    canvas = _texture(image_size, rng)
    instance = np.full((image_size, image_size), -1, np.int64)
    for index, item in enumerate(items):
        size = int(round(image_size * rng.uniform(0.3, 0.6)))
        top = int(rng.integers(0, image_size - size + 1))
        left = int(rng.integers(0, image_size - size + 1))
        alpha = _resize_alpha(item, size)
        tint = rng.uniform(0.0, 1.0, 3)
        window = canvas[top : top + size, left : left + size]
        canvas[top : top + size, left : left + size] = (
            window * (1.0 - alpha[..., None]) + tint * alpha[..., None]
        )
        region = instance[top : top + size, left : left + size]
        region[alpha > MASK_THRESHOLD] = index
    visible = [(index, int((instance == index).sum())) for index in range(len(items))]
    kept = [index for index, area in visible if area >= MIN_VISIBLE_PIXELS]
    semantic = np.zeros((image_size, image_size), np.uint8)
    masks, boxes = [], []
    area_by_class: dict[int, int] = {}
    for index in kept:
        mask = instance == index
        semantic[mask] = labels[index] + 1
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        boxes.append([rows[0], cols[0], rows[-1] + 1, cols[-1] + 1])
        masks.append(mask.astype(np.uint8))
        area_by_class[int(labels[index])] = area_by_class.get(int(labels[index]), 0) + int(mask.sum())
    ordered = sorted(area_by_class, key=lambda label: (-area_by_class[label], label))
    return Scene(
        image=_to_uint8(canvas),
        semantic_mask=semantic,
        labels=ordered,
        objects_bbox=np.asarray(boxes, np.float32).reshape(-1, 4) / np.float32(image_size),
        objects_label=[int(labels[index]) for index in kept],
        objects_mask=np.asarray(masks, np.uint8).reshape(-1, image_size, image_size),
    )

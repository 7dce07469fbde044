"""The segmentation training augmentation on the device, batched, inside the jitted step (``augment="device"``).

For a training split whose images all have one size (``fmnist_scenes``; ADE20K's vary and keep the host path), the
host loader only shuffles and batches the decoded uint8 images and masks (`data.decoded_loader`), and the step's
``augment`` hook (`runloop.make_step_fn`) does what `data.SegmentationTransform` does per element on the host:

- per image, from the step's key (``k_aug`` of ``fold_in(state.key, state.step)``: no hidden RNG, a resumed run
  draws the same), a factor from `data.RESCALE_FACTORS` (uniform), a crop offset and a flip (p=0.5);
- the rescaled size is `data.rescaled_shape` (the host's rounding); the crop offset is uniform in
  ``0..max(rescaled - crop, 0)`` on each side, so a rescaled image smaller than the crop sits at the top-left and
  is padded bottom/right, image by 0 and mask by 255 (ignore), as on the host; the flip mirrors the crop.

The resampling is the host's geometry exactly: for each of the seven factors the rescale is tabulated once on the
host (float64) as PIL computes it, and a step selects rows of those tables by its draws, so no shape depends on
a draw and no Python runs per image:

- image: PIL's BILINEAR resize (a triangle filter, antialiased when shrinking: its support grows by the shrink
  factor; weights normalised per output pixel), separable: per output row and column a band of at most a few
  source pixels and their weights, gathered and summed (rows, then columns); rows past the rescaled image have
  zero weights, which is the 0 padding.
- mask: PIL's NEAREST resize (its source index accumulated in float64 as Pillow's affine scaling does, so ties
  round as Pillow's do) as an index table, one gather; 255 past the rescaled image.

Differences from the host path: PIL rounds to uint8 after each of its two passes and uses fixed-point weights;
here the image stays float32 throughout (images differ by at most about 1/255; masks are identical for the same
draws). The draws come from JAX's generator, not numpy's, so the same seed gives other crops than the host path
(results agree within seed noise, not bit for bit). Photometric jitter is not done here: the device path is for
``photometric="none"`` only (`spec.SegmentationSpec` checks it). The resampling runs inside the step, so a run's
FLOPs per step (read from the compiled step) include it: 3.4e6 at the demo's sizes (64 px images, 56 px crops,
batch 16), about 1% of its fine-tuning step.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import jax.random as jr
import numpy as np
from flopdata import RecordSource
from jaxtyping import Array, Float, Int, PRNGKeyArray, UInt8

from .data import IGNORE_INDEX, RESCALE_FACTORS, rescaled_shape

__all__ = ["AUGMENT_MODES", "Draws", "DeviceAugment", "bilinear_weights", "device_augment_for", "nearest_indices",
           "prepare_decoded_batch", "use_device_augment"]

AUGMENT_MODES = ("host", "device", "auto")
"""Where training images are augmented: "host" (per element in the grain pipeline, `data.SegmentationTransform`),
"device" (this module) or "auto" (device when the training images have one size and photometric is "none")."""

Draws = tuple[Int[Array, " b"], Int[Array, " b"], Int[Array, " b"], Array]
"""Per image: factor index into `data.RESCALE_FACTORS`, crop top, crop left, flip (bool)."""


def use_device_augment(mode: str, *, photometric: str, image_shape: tuple[int, ...] | None) -> bool:
    """Whether a run augments on the device: ``mode`` "device" (ValueError when the training images vary in size:
    ``image_shape`` None), "host", or "auto" (device when the images have one size and ``photometric`` is
    "none")."""
    if mode not in AUGMENT_MODES:
        raise ValueError(f"augment={mode!r}: expected one of {', '.join(AUGMENT_MODES)}")
    if mode == "device" and image_shape is None:
        raise ValueError("augment='device': the training images vary in size; the device path needs one size "
                         "(use augment='host' or 'auto')")
    if mode == "device" and photometric != "none":
        raise ValueError(f"augment='device' with photometric={photometric!r}: the device path has no colour "
                         "jitter; use photometric='none' or augment='host'")
    return mode == "device" or (mode == "auto" and image_shape is not None and photometric == "none")


def device_augment_for(mode: str, *, photometric: str, directory: str, split: str, crop: int
                       ) -> DeviceAugment | None:
    """The run's `DeviceAugment` when it augments on the device (`use_device_augment` on the training split's
    image shape), else None."""
    shape = RecordSource(directory, split).fixed_shape("image")
    if not use_device_augment(mode, photometric=photometric, image_shape=shape):
        return None
    return DeviceAugment((shape[0], shape[1]), crop)


def bilinear_weights(size: int, out: int) -> Float[np.ndarray, "out size"]:
    """PIL's BILINEAR resize of one axis from ``size`` to ``out`` pixels as a matrix (Pillow ``precompute_coeffs``:
    triangle filter, support scaled by the shrink factor, each row normalised), float64."""
    scale = size / out
    support = max(scale, 1.0)
    centre = (np.arange(out) + 0.5) * scale
    weights = np.maximum(0.0, 1.0 - np.abs((np.arange(size)[None, :] + 0.5 - centre[:, None]) / support))
    return weights / weights.sum(1, keepdims=True)


def nearest_indices(size: int, out: int) -> Int[np.ndarray, " out"]:
    """PIL's NEAREST resize of one axis from ``size`` to ``out`` pixels: the source index of each output pixel,
    accumulated in float64 as Pillow's affine scaling does (``xo = a/2; xo += a`` per pixel, then truncated)."""
    step, position, index = size / out, size / out * 0.5, []
    for _ in range(out):
        index.append(int(position))
        position += step
    return np.asarray(index, np.int64)


class DeviceAugment:
    """The device transform for training images of ``image_hw`` cropped to ``crop`` after a rescale whose base
    short side is ``base`` (the host's `data.SegmentationData.base_size`, default the crop). ``draw`` makes the
    draws, ``apply`` the crops for given draws, and the instance is the step's ``augment`` hook."""

    def __init__(self, image_hw: tuple[int, int], crop: int, base: int | None = None):
        h, w = image_hw
        if min(h, w, crop) < 1 or (base is not None and base < 1):
            raise ValueError(f"image_hw={image_hw}, crop={crop}, base={base}: expected positive sizes")
        self.image_hw, self.crop, self.base = (h, w), crop, base or crop
        shapes = [rescaled_shape(h, w, self.base, factor) for factor in RESCALE_FACTORS]
        self.shapes = np.asarray(shapes, np.int32)  # [factors, 2]: the rescaled (h, w)
        # tables padded with zero rows / IGNORE rows to max(rescaled, crop): top + i stays inside them
        rows = max(max(s[0] for s in shapes), crop)
        cols = max(max(s[1] for s in shapes), crop)
        self.weights_y = np.zeros((len(shapes), rows, h), np.float32)
        self.weights_x = np.zeros((len(shapes), cols, w), np.float32)
        self.index_y = np.full((len(shapes), rows), -1, np.int32)
        self.index_x = np.full((len(shapes), cols), -1, np.int32)
        for f, (nh, nw) in enumerate(shapes):
            self.weights_y[f, :nh] = bilinear_weights(h, nh)
            self.weights_x[f, :nw] = bilinear_weights(w, nw)
            self.index_y[f, :nh] = nearest_indices(h, nh)
            self.index_x[f, :nw] = nearest_indices(w, nw)
        self.taps_y, self.tap_weights_y = _taps(self.weights_y)
        self.taps_x, self.tap_weights_x = _taps(self.weights_x)

    def draw(self, key: PRNGKeyArray, batch: int) -> Draws:
        """Per image: a factor (uniform over `data.RESCALE_FACTORS`), a crop offset (uniform in
        ``0..max(rescaled - crop, 0)`` per side) and a flip (p=0.5)."""
        k_factor, k_top, k_left, k_flip = jr.split(key, 4)
        factor = jr.randint(k_factor, (batch,), 0, len(RESCALE_FACTORS))
        shape = jnp.asarray(self.shapes)[factor]
        top = jr.randint(k_top, (batch,), 0, jnp.maximum(shape[:, 0] - self.crop, 0) + 1)
        left = jr.randint(k_left, (batch,), 0, jnp.maximum(shape[:, 1] - self.crop, 0) + 1)
        return factor, top, left, jr.bernoulli(k_flip, 0.5, (batch,))

    def apply(self, images: UInt8[Array, "b h w 3"], masks: UInt8[Array, "b h w"] | Int[Array, "b h w"],
              draws: Draws) -> tuple[Float[Array, "b crop crop 3"], Int[Array, "b crop crop"]]:
        """The rescaled, cropped and flipped images (float32 in [0, 1]) and masks (int32, 255 outside)."""
        factor, top, left, flip = draws
        span = jnp.arange(self.crop)
        rows = top[:, None] + span  # [b, crop]: the rescaled image's rows the crop covers
        cols = left[:, None] + jnp.where(flip[:, None], self.crop - 1 - span, span)
        batch = jnp.arange(images.shape[0])[:, None, None]
        ty, wy = jnp.asarray(self.taps_y)[factor[:, None], rows], jnp.asarray(self.tap_weights_y)[factor[:, None], rows]
        tx, wx = jnp.asarray(self.taps_x)[factor[:, None], cols], jnp.asarray(self.tap_weights_x)[factor[:, None], cols]
        # rows first ([b, crop, taps, w, 3] -> [b, crop, w, 3]), then columns ([b, crop, crop, taps, 3])
        by_rows = jnp.einsum("byk,bykwc->bywc", wy, images.astype(jnp.float32)[batch, ty])
        by_cols = by_rows[batch[..., None], jnp.arange(self.crop)[None, :, None, None], tx[:, None]]
        pixels = jnp.einsum("bxk,byxkc->byxc", wx, by_cols) / jnp.float32(255.0)
        iy = jnp.asarray(self.index_y)[factor[:, None], rows]
        ix = jnp.asarray(self.index_x)[factor[:, None], cols]
        inside = (iy[:, :, None] >= 0) & (ix[:, None, :] >= 0)
        gathered = masks[batch, jnp.maximum(iy, 0)[:, :, None], jnp.maximum(ix, 0)[:, None, :]].astype(jnp.int32)
        return pixels, jnp.where(inside, gathered, IGNORE_INDEX)

    def __call__(self, batch: dict[str, Array], *, step: Array, key: PRNGKeyArray) -> dict[str, Array]:
        """The step's ``augment`` hook: ``{"image": uint8 [b, h, w, 3], "mask": [b, h, w]}`` -> the training
        batch ``{"image": float32 [b, crop, crop, 3], "mask": int32 [b, crop, crop]}``."""
        del step
        images, masks = self.apply(batch["image"], batch["mask"], self.draw(key, batch["image"].shape[0]))
        return {"image": images, "mask": masks}


def _taps(weights: Float[np.ndarray, "f n size"]) -> tuple[Int[np.ndarray, "f n k"], Float[np.ndarray, "f n k"]]:
    """A weight table's nonzero band as (source index, weight) per output pixel, ``k`` the widest band (5 for a
    2.3x shrink): the resampling then gathers ``k`` taps instead of multiplying by the dense matrix (about 12x
    fewer FLOPs at the demo's sizes, the same CPU time)."""
    nonzero = weights > 0
    k = max(int(nonzero.sum(-1).max()), 1)
    start = np.where(nonzero.any(-1), nonzero.argmax(-1), 0)
    index = start[..., None] + np.arange(k)
    padded = np.pad(weights, ((0, 0), (0, 0), (0, k)))
    return (np.minimum(index, weights.shape[-1] - 1).astype(np.int32),
            np.take_along_axis(padded, index, -1).astype(np.float32))


def prepare_decoded_batch(image_hw: tuple[int, int]) -> Callable[[dict], dict[str, np.ndarray]]:
    """Host side, before a batch of `data.decoded_loader` goes to the devices: checks its uint8 ``image``
    [b, h, w, 3] and ``mask`` [b, h, w] at ``image_hw``."""

    def prepare(batch: dict) -> dict[str, np.ndarray]:
        if not isinstance(batch, dict) or "image" not in batch or "mask" not in batch:
            raise TypeError(f"prepare_decoded_batch: batch={type(batch).__name__}: expected a dict with 'image' "
                            "and 'mask'")
        images, masks = np.asarray(batch["image"]), np.asarray(batch["mask"])
        if images.dtype != np.uint8 or images.shape[1:] != (*image_hw, 3):
            raise ValueError(f"prepare_decoded_batch: batch['image'] {images.dtype}{list(images.shape)}: expected "
                             f"uint8 [B, {image_hw[0]}, {image_hw[1]}, 3]")
        if masks.dtype != np.uint8 or masks.shape != images.shape[:3]:
            raise ValueError(f"prepare_decoded_batch: batch['mask'] {masks.dtype}{list(masks.shape)}: expected "
                             f"uint8 {list(images.shape[:3])}")
        return {"image": images, "mask": masks}

    return prepare

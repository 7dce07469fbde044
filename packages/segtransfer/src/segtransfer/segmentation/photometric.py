"""Photometric jitter for segmentation fine-tuning: numpy, on one float32 [h, w, 3] image in [0, 1], host-side.

Two recipes, chosen by name (`SegmentationData.photometric`, `PHOTOMETRIC`):

- ``"byol"`` (the study's, default): BYOL's ``color_transform`` (deepmind-research ``byol/utils/augmentations.py``,
  the study's reference [4]) at the settings of appendix A.4: brightness = contrast = saturation = hue = 0.1,
  ``apply_prob`` 0.5, and that function's other defaults (``color_jitter_prob`` 0.8, ``to_grayscale_prob`` 0.2,
  ``shuffle`` True). BYOL's ops, not torchvision's: brightness adds ``U(-b, b)``, contrast scales each channel
  about its own mean by ``U(1-c, 1+c)``, saturation multiplies HSV saturation by ``U(1-s, 1+s)`` (clipped to
  [0, 1]), hue rotates by ``U(-h, h)`` turns; each op clips to [0, 1]; grey uses (0.2989, 0.5870, 0.1140).
- ``"mmseg"``: mmsegmentation's ``PhotoMetricDistortion`` (brightness +-32/255, contrast and saturation
  x U(0.5, 1.5), hue +-0.1 turn, each with p=0.5, no grey), about 5x stronger than the study's at these settings
  (`tests/test_photometric.py` measures it); the usual choice in mmseg configs.
- ``"none"``: the image unchanged.

Why this is not `sslmethods.blocks.augment_colour`: that module is the pre-training jitter, on device inside the jitted
step and with torchvision's ops (DINO's, MAE's, open_clip's canonical code), while segmentation augments on the
host in grain workers (decode, random rescale and crop at variable sizes come first) and the study asks for
BYOL's ops here. The two differ in math as well as in place, and segtransfer does not import sslmethods.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from jaxtyping import Float32

__all__ = [
    "PHOTOMETRIC",
    "ByolColourDraw",
    "apply_byol_colour",
    "byol_colour_transform",
    "draw_byol_colour",
    "hsv_to_rgb",
    "mmseg_photometric_distortion",
    "rgb_to_hsv",
]

Image = Float32[np.ndarray, "h w 3"]
BYOL_GRAY_WEIGHTS = np.asarray([0.2989, 0.5870, 0.1140], np.float32)


def rgb_to_hsv(image: Image) -> Image:
    """RGB in [0, 1] -> HSV, hue in [0, 1) (0 for grey pixels): colorsys / TF ``rgb_to_hsv``, vectorised."""
    maxc, minc = image.max(-1), image.min(-1)
    span = maxc - minc
    safe = np.where(span > 0, span, np.float32(1.0))
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    hue = np.where(r == maxc, bc - gc, np.where(g == maxc, 2.0 + rc - bc, 4.0 + gc - rc))
    hue = np.where(span > 0, (hue / 6.0) % 1.0, 0.0)
    sat = np.where(maxc > 0, span / np.where(maxc > 0, maxc, 1.0), 0.0)
    return np.stack([hue, sat, maxc], -1).astype(np.float32)


def hsv_to_rgb(hsv: Image) -> Image:
    """Inverse of `rgb_to_hsv` (colorsys ``hsv_to_rgb``), vectorised; hue taken modulo 1."""
    hue, sat, v = hsv[..., 0] % 1.0, hsv[..., 1], hsv[..., 2]
    i = np.floor(hue * 6.0)
    f = hue * 6.0 - i
    p, q, t = v * (1 - sat), v * (1 - sat * f), v * (1 - sat * (1 - f))
    i = i.astype(np.int64) % 6
    rgb = [np.choose(i, order) for order in ([v, q, p, p, t, v], [t, v, v, q, p, p], [p, p, t, v, v, q])]
    return np.stack(rgb, -1).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class ByolColourDraw:
    """The random draws of one image's BYOL ``color_transform``: whether the transform applies at all, whether
    its jitter and its grey conversion fire, the order of the four ops (0 brightness, 1 contrast, 2 saturation,
    3 hue) and each op's value (brightness delta, contrast factor, saturation factor, hue delta; None = skipped
    because its strength is 0)."""

    apply: bool
    jitter: bool
    grayscale: bool
    order: tuple[int, int, int, int]
    brightness: float | None
    contrast: float | None
    saturation: float | None
    hue: float | None


def draw_byol_colour(
    rng: np.random.Generator,
    *,
    brightness: float = 0.1,
    contrast: float = 0.1,
    saturation: float = 0.1,
    hue: float = 0.1,
    apply_prob: float = 0.5,
    color_jitter_prob: float = 0.8,
    to_grayscale_prob: float = 0.2,
) -> ByolColourDraw:
    """One image's draws for `apply_byol_colour`; defaults are the study's segmentation settings (A.4)."""
    for name, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation),
                        ("hue", hue)):
        if not value >= 0:
            raise ValueError(f"{name}={value!r}; expected a jitter strength >= 0")
    for name, value in (("apply_prob", apply_prob), ("color_jitter_prob", color_jitter_prob),
                        ("to_grayscale_prob", to_grayscale_prob)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}={value!r}; expected a probability in [0, 1]")
    u = rng.random(3)
    values = rng.uniform(-1.0, 1.0, 4)  # BYOL: U(-s, s) deltas and U(1 - s, 1 + s) factors
    return ByolColourDraw(
        apply=bool(u[0] <= apply_prob),
        jitter=bool(u[1] <= color_jitter_prob),
        grayscale=bool(u[2] <= to_grayscale_prob),
        order=tuple(int(i) for i in rng.permutation(4)),
        brightness=float(brightness * values[0]) if brightness > 0 else None,
        contrast=float(1.0 + contrast * values[1]) if contrast > 0 else None,
        saturation=float(1.0 + saturation * values[2]) if saturation > 0 else None,
        hue=float(hue * values[3]) if hue > 0 else None,
    )


def _byol_op(image: Image, op: int, value: float) -> Image:
    if op == 0:
        out = image + np.float32(value)
    elif op == 1:
        mean = image.mean(axis=(0, 1), keepdims=True)  # per channel, as BYOL's adjust_contrast
        out = np.float32(value) * (image - mean) + mean
    elif op == 2:
        hsv = rgb_to_hsv(image)
        hsv[..., 1] = np.clip(hsv[..., 1] * np.float32(value), 0.0, 1.0)
        out = hsv_to_rgb(hsv)
    else:
        hsv = rgb_to_hsv(image)
        hsv[..., 0] = (hsv[..., 0] + np.float32(value)) % 1.0
        out = hsv_to_rgb(hsv)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def apply_byol_colour(image: Image, draw: ByolColourDraw) -> Image:
    """BYOL's ``_color_transform_single_image`` with the draws fixed: the jitter ops in ``draw.order`` (each
    clipped to [0, 1]), then grey, when the transform applies; float32 out."""
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image.shape={image.shape}; expected [h, w, 3] RGB")
    out = image.astype(np.float32)
    if not draw.apply:
        return out
    if draw.jitter:
        values = (draw.brightness, draw.contrast, draw.saturation, draw.hue)
        for op in draw.order:
            if values[op] is not None:
                out = _byol_op(out, op, values[op])
    if draw.grayscale:
        out = np.repeat(out @ BYOL_GRAY_WEIGHTS, 3).reshape(out.shape)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def byol_colour_transform(image: Image, rng: np.random.Generator, **settings: float) -> Image:
    """BYOL's ``color_transform`` on one image (`draw_byol_colour` then `apply_byol_colour`); ``settings`` are
    `draw_byol_colour`'s keywords, the study's segmentation values by default."""
    return apply_byol_colour(image, draw_byol_colour(rng, **settings))


def mmseg_photometric_distortion(image: Image, rng: np.random.Generator, *, probability: float = 0.5) -> Image:
    """mmseg ``PhotoMetricDistortion`` on float32 [h, w, 3] in [0, 1]: brightness, contrast, saturation, hue."""
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
        hsv = rgb_to_hsv(image)
        hsv[..., 0] = (hsv[..., 0] + np.float32(rng.uniform(-0.1, 0.1))) % 1.0
        image = hsv_to_rgb(hsv)
    return image.astype(np.float32)


def _unchanged(image: Image, rng: np.random.Generator) -> Image:
    del rng
    return image.astype(np.float32)


PHOTOMETRIC: dict[str, Callable[[Image, np.random.Generator], Image]] = {
    "byol": byol_colour_transform,
    "mmseg": mmseg_photometric_distortion,
    "none": _unchanged,
}
"""Photometric recipes by name (see the module docstring); ``"byol"`` is the study's."""

"""Photometric augmentations on one float32 image [h w c] in [0, 1] (batch them with ``jax.vmap``).

Semantics follow torchvision's tensor ops (used by DINO, MAE and open_clip; SimCLR and BYOL differ only in
small details, noted where they matter): every op clips its result to [0, 1], grayscale uses the ITU-R 601-2
luma weights (0.299, 0.587, 0.114), and on a single-channel image the chroma ops (saturation, hue, grayscale)
are the identity, as in torchvision.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = [
    "GRAY_WEIGHTS",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "color_jitter",
    "hsv_to_rgb",
    "rgb_to_hsv",
    "solarize",
    "to_grayscale",
]

GRAY_WEIGHTS = (0.299, 0.587, 0.114)
Image = Float[Array, "h w c"]
Scalar = float | Float[Array, ""]


def _gray(image: Image) -> Float[Array, "h w 1"]:
    if image.shape[-1] == 1:
        return image
    w = jnp.asarray(GRAY_WEIGHTS, jnp.float32)
    return jnp.sum(image * w, axis=-1, keepdims=True)


def to_grayscale(image: Image) -> Image:
    """Luma ``0.299 R + 0.587 G + 0.114 B`` repeated over the channels (torchvision ``rgb_to_grayscale``)."""
    if image.shape[-1] not in (1, 3):
        raise ValueError(f"image.shape={image.shape}: expected 1 or 3 channels")
    return jnp.broadcast_to(_gray(image), image.shape)


def adjust_brightness(image: Image, factor: Scalar) -> Image:
    """``clip(image * factor)`` (torchvision and SimCLR v2; BYOL adds a delta instead of multiplying)."""
    return jnp.clip(image * jnp.asarray(factor, jnp.float32), 0.0, 1.0)


def adjust_contrast(image: Image, factor: Scalar) -> Image:
    """Blend with the mean grey level of the image: ``clip(f * x + (1 - f) * mean(gray(x)))`` (torchvision).

    SimCLR/BYOL use the per-channel mean instead; the two agree on grey images.
    """
    f = jnp.asarray(factor, jnp.float32)
    return jnp.clip(f * image + (1.0 - f) * jnp.mean(_gray(image)), 0.0, 1.0)


def adjust_saturation(image: Image, factor: Scalar) -> Image:
    """Blend with the grayscale image: ``clip(f * x + (1 - f) * gray(x))`` (torchvision)."""
    if image.shape[-1] == 1:
        return image
    f = jnp.asarray(factor, jnp.float32)
    return jnp.clip(f * image + (1.0 - f) * _gray(image), 0.0, 1.0)


def rgb_to_hsv(image: Float[Array, "h w 3"]) -> Float[Array, "h w 3"]:
    """RGB in [0, 1] to HSV with hue in [0, 1) (hue 0 for grey pixels), as torchvision ``_rgb2hsv``."""
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    maxc = jnp.max(image, axis=-1)
    minc = jnp.min(image, axis=-1)
    chroma = maxc - minc
    grey = chroma == 0
    s = chroma / jnp.where(maxc == 0, 1.0, maxc)
    c = jnp.where(grey, 1.0, chroma)
    rc, gc, bc = (maxc - r) / c, (maxc - g) / c, (maxc - b) / c
    h = jnp.where(maxc == r, bc - gc, jnp.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = jnp.where(grey, 0.0, h)
    h = jnp.mod(h / 6.0, 1.0)
    return jnp.stack([h, s, maxc], axis=-1)


def hsv_to_rgb(image: Float[Array, "h w 3"]) -> Float[Array, "h w 3"]:
    """Inverse of ``rgb_to_hsv`` (torchvision ``_hsv2rgb``)."""
    h, s, v = image[..., 0], image[..., 1], image[..., 2]
    h6 = jnp.mod(h, 1.0) * 6.0
    sector = jnp.floor(h6)
    f = h6 - sector
    sector = sector.astype(jnp.int32) % 6
    p = jnp.clip(v * (1.0 - s), 0.0, 1.0)
    q = jnp.clip(v * (1.0 - s * f), 0.0, 1.0)
    t = jnp.clip(v * (1.0 - s * (1.0 - f)), 0.0, 1.0)
    table = jnp.stack(
        [
            jnp.stack([v, q, p, p, t, v], axis=-1),
            jnp.stack([t, v, v, q, p, p], axis=-1),
            jnp.stack([p, p, t, v, v, q], axis=-1),
        ],
        axis=-2,
    )  # [h w 3 6]
    return jnp.take_along_axis(table, sector[..., None, None], axis=-1)[..., 0]


def adjust_hue(image: Image, delta: Scalar) -> Image:
    """Rotates the hue by ``delta`` turns (``delta`` in [-0.5, 0.5]), through HSV (torchvision
    ``adjust_hue``)."""
    if image.shape[-1] == 1:
        return image
    hsv = rgb_to_hsv(image)
    hue = jnp.mod(hsv[..., 0] + jnp.asarray(delta, jnp.float32), 1.0)
    return jnp.clip(hsv_to_rgb(jnp.stack([hue, hsv[..., 1], hsv[..., 2]], axis=-1)), 0.0, 1.0)


def solarize(image: Image, threshold: Scalar = 0.5) -> Image:
    """Inverts the pixels at or above ``threshold``: ``where(x < threshold, x, 1 - x)`` (BYOL; PIL at
    128/255)."""
    return jnp.where(image < jnp.asarray(threshold, jnp.float32), image, 1.0 - image)


def color_jitter(
    image: Image, *, key: PRNGKeyArray, brightness: float, contrast: float, saturation: float, hue: float
) -> Image:
    """torchvision ``ColorJitter``: the four adjustments in a random order, each with a uniform random factor.

    Factors: brightness, contrast, saturation ``U(max(0, 1 - s), 1 + s)``; hue delta ``U(-hue, hue)``. An op
    with strength 0 is skipped (so all-zero strengths return the input unchanged). SimCLR's strength-1 jitter
    is ``(0.8, 0.8, 0.8, 0.2)``; BYOL and DINO use ``(0.4, 0.4, 0.2, 0.1)``.
    """
    for name, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
        if value < 0:
            raise ValueError(f"{name}={value}: expected a non-negative jitter strength")
    if not 0.0 <= hue <= 0.5:
        raise ValueError(f"hue={hue}: expected a value in [0, 0.5]")
    # One draw: four factors and four sort keys (argsort of uniforms is a uniform random permutation).
    u = jax.random.uniform(key, (8,), jnp.float32)

    def factor(x: Float[Array, ""], strength: float) -> Float[Array, ""]:
        lo = max(0.0, 1.0 - strength)
        return lo + (1.0 + strength - lo) * x

    ops = []
    if brightness > 0:
        ops.append(lambda x: adjust_brightness(x, factor(u[0], brightness)))
    if contrast > 0:
        ops.append(lambda x: adjust_contrast(x, factor(u[1], contrast)))
    if saturation > 0 and image.shape[-1] == 3:
        ops.append(lambda x: adjust_saturation(x, factor(u[2], saturation)))
    if hue > 0 and image.shape[-1] == 3:
        ops.append(lambda x: adjust_hue(x, hue * (2.0 * u[3] - 1.0)))
    if not ops:
        return image
    order = jnp.argsort(u[4 : 4 + len(ops)])
    # One loop body holding each op once (not an unrolled switch per position): 4x less to compile.
    return jax.lax.fori_loop(0, len(ops), lambda i, x: jax.lax.switch(order[i], ops, x), image)

"""Geometric augmentations and blur on one float32 image [h w c] (batch them with ``jax.vmap``).

All outputs have static shapes: the crop box is a traced value and the crop is resampled with
``jax.image.scale_and_translate``, so the same compiled program serves every random crop.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = [
    "blur_kernel_size",
    "gaussian_blur",
    "random_flip",
    "random_resized_crop",
    "resized_crop",
    "sample_crop_box",
]

Image = Float[Array, "h w c"]
_ATTEMPTS = 10  # torchvision RandomResizedCrop.get_params tries 10 boxes, then falls back to a centre crop
_METHODS = ("linear", "cubic", "nearest")


def sample_crop_box(
    key: PRNGKeyArray, height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float]
) -> Float[Array, "4"]:
    """torchvision ``RandomResizedCrop.get_params``: ``(top, left, crop_height, crop_width)`` in pixels.

    Area fraction ``U(scale)``, aspect ratio log-uniform in ``ratio``; the first of 10 candidates that fits
    wins, otherwise a centre crop with the aspect ratio clamped to ``ratio``. Integer-valued, float32.
    """
    if not 0.0 < scale[0] <= scale[1] <= 1.0:
        raise ValueError(f"scale={scale}: expected 0 < min <= max <= 1 (fractions of the image area)")
    if not 0.0 < ratio[0] <= ratio[1]:
        raise ValueError(f"ratio={ratio}: expected 0 < min <= max (aspect ratios width/height)")
    # One draw for everything: each PRNG call is a threefry hash that costs ~0.5 s of CPU compile time.
    u = jax.random.uniform(key, (4, _ATTEMPTS), jnp.float32)
    area = jnp.float32(height * width) * (scale[0] + (scale[1] - scale[0]) * u[0])
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = jnp.exp(log_lo + (log_hi - log_lo) * u[1])
    w = jnp.round(jnp.sqrt(area * aspect))
    h = jnp.round(jnp.sqrt(area / aspect))
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    top = jnp.minimum(jnp.floor(u[2] * (height - h + 1)), height - h)
    left = jnp.minimum(jnp.floor(u[3] * (width - w + 1)), width - w)
    first = jnp.argmax(ok)
    # Fallback computed statically: it depends only on the image shape and the ratio range.
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        fh, fw = height, int(round(height * ratio[1]))
    else:
        fw, fh = width, height
    fallback = jnp.asarray([(height - fh) // 2, (width - fw) // 2, fh, fw], jnp.float32)
    chosen = jnp.stack([top[first], left[first], h[first], w[first]])
    return jnp.where(jnp.any(ok), chosen, fallback)


def _kernel(x: Float[Array, "..."], method: str) -> Float[Array, "..."]:
    x = jnp.abs(x)
    if method == "nearest":
        return jnp.where(x < 0.5, 1.0, 0.0)
    if method == "linear":
        return jnp.maximum(0.0, 1.0 - x)
    a = -0.5  # Keys' cubic convolution, as PIL's bicubic and jax.image's "cubic"
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    return jnp.where(x <= 1.0, near, jnp.where(x < 2.0, far, 0.0))


def _resample_matrix(
    out_size: int, in_size: int, start: Float[Array, ""], length: Float[Array, ""], method: str
) -> Float[Array, "o i"]:
    """Weights mapping ``in_size`` pixels to ``out_size`` samples of the span ``[start, start + length)``."""
    scale = out_size / length
    centre = (
        start + (jnp.arange(out_size, dtype=jnp.float32) + 0.5) / scale - 0.5
    )  # input coordinate per output
    # Antialiasing: when shrinking, widen the filter by the shrink factor (as PIL and jax.image do).
    support = jnp.maximum(1.0, 1.0 / scale)
    w = _kernel((jnp.arange(in_size, dtype=jnp.float32)[None, :] - centre[:, None]) / support, method)
    total = jnp.sum(w, axis=1, keepdims=True)
    return w / jnp.where(total > 0, total, 1.0)


def resized_crop(
    image: Image, box: Float[Array, "4"], size: int | tuple[int, int], *, method: str = "linear"
) -> Float[Array, "size_h size_w c"]:
    """Resamples the box ``(top, left, height, width)`` of ``image`` to ``size`` (antialiased when shrinking).

    Separable: two small weight matrices and two matmuls, so the program is cheap to compile and the box may
    be a traced value. Pixel-centre convention: output pixel ``o`` samples input row
    ``top + (o + 0.5) * height / size - 0.5``, the convention of ``jax.image.scale_and_translate`` and PIL.
    Unlike torchvision, which crops before resizing, the filter may reach a pixel or two past the box edge
    (weights are renormalised at the image border). The result is clipped to [0, 1] (bicubic overshoots).
    """
    if method not in _METHODS:
        raise ValueError(f"method={method!r}: expected one of {_METHODS}")
    out_h, out_w = (size, size) if isinstance(size, int) else size
    box = box.astype(jnp.float32)
    rows = _resample_matrix(out_h, image.shape[0], box[0], box[2], method)
    cols = _resample_matrix(out_w, image.shape[1], box[1], box[3], method)
    out = jnp.einsum("oh,hwc,pw->opc", rows, image, cols, precision=jax.lax.Precision.HIGHEST)
    return jnp.clip(out, 0.0, 1.0)


def random_resized_crop(
    image: Image,
    *,
    key: PRNGKeyArray,
    size: int,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
    method: str = "linear",
) -> Float[Array, "size size c"]:
    """torchvision ``RandomResizedCrop(size, scale, ratio)`` with a static ``size x size`` output."""
    if size <= 0:
        raise ValueError(f"size={size}: expected a positive output size")
    box = sample_crop_box(key, image.shape[0], image.shape[1], scale, ratio)
    return resized_crop(image, box, size, method=method)


def random_flip(image: Image, *, key: PRNGKeyArray, prob: float = 0.5) -> Image:
    """Left-right flip with probability ``prob``."""
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob={prob}: expected a probability in [0, 1]")
    return jnp.where(jax.random.uniform(key, ()) < prob, image[:, ::-1, :], image)


def blur_kernel_size(image_size: int) -> int:
    """Odd kernel of about 10% of the image: ``2 * (image_size // 20) + 1`` (SimCLR/BYOL ``H / 10`` halved,
    made odd), at least 3 so that tiny crops are still blurred (SimCLR would give 1, a no-op, below 20 px)."""
    return 2 * max(1, int(image_size / 10.0 / 2.0)) + 1


def gaussian_blur(image: Image, sigma: float | Float[Array, ""], kernel_size: int) -> Image:
    """Separable Gaussian blur with reflect padding (torchvision ``gaussian_blur``; SimCLR pads with
    zeros)."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size={kernel_size}: expected a positive odd size")
    radius = kernel_size // 2
    if radius >= min(image.shape[0], image.shape[1]):
        raise ValueError(f"kernel_size={kernel_size}: too large for an image of shape {image.shape}")
    x = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    s = jnp.asarray(sigma, jnp.float32)
    weights = jnp.exp(-(x**2) / (2.0 * s * s))
    weights = weights / jnp.sum(weights)
    h, w = image.shape[0], image.shape[1]
    padded = jnp.pad(image, ((radius, radius), (0, 0), (0, 0)), mode="reflect")
    out = sum(weights[i] * padded[i : i + h] for i in range(kernel_size))
    padded = jnp.pad(out, ((0, 0), (radius, radius), (0, 0)), mode="reflect")
    out = sum(weights[i] * padded[:, i : i + w] for i in range(kernel_size))
    return jnp.clip(out, 0.0, 1.0)

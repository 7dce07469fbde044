"""On-device view recipes: a ``ViewConfig`` describes one augmented view, a recipe is a tuple of them.

Images are float32 NHWC in [0, 1]. ``augment_view`` transforms one image (crop -> flip -> colour jitter ->
grayscale -> blur -> solarise, the order of SimCLR, BYOL and DINO); ``augment_batch`` vmaps it over a batch
with one key per example; ``make_views`` builds every view of a recipe. Output shapes are static, so the whole
pipeline lives inside the jitted training step and per-step randomness comes from ``fold_in(key, step)``.

The recipe functions reproduce the canonical repositories (probabilities, ranges) at any image size::

    views = make_views(images, byol_views(32), key=k_aug)   # (view1, view2), each [b 32 32 c]
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .augment_colour import color_jitter, solarize, to_grayscale
from .augment_geometry import blur_kernel_size, gaussian_blur, random_resized_crop

__all__ = [
    "ViewConfig",
    "augment_batch",
    "augment_view",
    "byol_views",
    "clip_views",
    "dino_local_size",
    "dino_views",
    "mae_views",
    "make_views",
    "simclr_views",
    "supervised_views",
]

Recipe = tuple["ViewConfig", ...]


def _check_prob(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value}: expected a probability in [0, 1]")


@dataclasses.dataclass(frozen=True)
class ViewConfig:
    """One augmented view. Every probability-0 / strength-0 step is skipped entirely (identity)."""

    size: int
    """Output height and width of the random resized crop."""
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    interpolation: str = "linear"
    """``linear`` (torchvision default), ``cubic`` (DINO, MAE, open_clip) or ``nearest``."""
    flip_prob: float = 0.5
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    jitter_prob: float = 0.8
    grayscale_prob: float = 0.0
    blur_prob: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_prob: float = 0.0

    def __post_init__(self):
        if self.size <= 0:
            raise ValueError(f"size={self.size}: expected a positive output size")
        for name in ("flip_prob", "jitter_prob", "grayscale_prob", "blur_prob", "solarize_prob"):
            _check_prob(name, getattr(self, name))
        if not 0.0 < self.blur_sigma[0] <= self.blur_sigma[1]:
            raise ValueError(f"blur_sigma={self.blur_sigma}: expected 0 < min <= max")

    @property
    def jitter(self) -> bool:
        return self.jitter_prob > 0 and max(self.brightness, self.contrast, self.saturation, self.hue) > 0


def augment_view(
    image: Float[Array, "h w c"], config: ViewConfig, *, key: PRNGKeyArray
) -> Float[Array, "s s c"]:
    """One augmented view of one image (see ``ViewConfig``); the output is ``[size, size, c]`` float32."""
    if image.dtype != jnp.float32:
        raise TypeError(f"image.dtype={image.dtype}: expected float32 values in [0, 1]")
    k_crop, k_jit, k_misc = jax.random.split(key, 3)
    # One draw for all coin flips and the blur sigma: every PRNG call costs compile time on CPU.
    u = jax.random.uniform(k_misc, (6,), jnp.float32)
    out = random_resized_crop(
        image,
        key=k_crop,
        size=config.size,
        scale=config.crop_scale,
        ratio=config.crop_ratio,
        method=config.interpolation,
    )
    if config.flip_prob > 0:
        out = jnp.where(u[0] < config.flip_prob, out[:, ::-1, :], out)
    if config.jitter:
        jittered = color_jitter(
            out,
            key=k_jit,
            brightness=config.brightness,
            contrast=config.contrast,
            saturation=config.saturation,
            hue=config.hue,
        )
        out = jnp.where(u[1] < config.jitter_prob, jittered, out)
    if config.grayscale_prob > 0:
        out = jnp.where(u[2] < config.grayscale_prob, to_grayscale(out), out)
    if config.blur_prob > 0:
        lo, hi = config.blur_sigma
        blurred = gaussian_blur(out, lo + (hi - lo) * u[3], blur_kernel_size(config.size))
        out = jnp.where(u[4] < config.blur_prob, blurred, out)
    if config.solarize_prob > 0:
        out = jnp.where(u[5] < config.solarize_prob, solarize(out), out)
    return out


def augment_batch(
    images: Float[Array, "b h w c"], config: ViewConfig, *, key: PRNGKeyArray
) -> Float[Array, "b s s c"]:
    """``augment_view`` on every image of a batch, with independent keys (``vmap``)."""
    keys = jax.random.split(key, images.shape[0])
    return jax.vmap(lambda im, k: augment_view(im, config, key=k))(images, keys)


def make_views(
    images: Float[Array, "b h w c"], recipe: Recipe, *, key: PRNGKeyArray
) -> tuple[Float[Array, "b _ _ c"], ...]:
    """All views of ``recipe``, one array per view. Consecutive identical configs (DINO's local crops) are
    traced once on a batch of n * b images, so ten local crops cost one compiled pipeline, not ten."""
    if not recipe:
        raise ValueError("recipe=(): expected at least one ViewConfig")
    keys = jax.random.split(key, len(recipe))
    views: list[Array] = []
    i = 0
    while i < len(recipe):
        j = i
        while j + 1 < len(recipe) and recipe[j + 1] == recipe[i]:
            j += 1
        if j == i:
            views.append(augment_batch(images, recipe[i], key=keys[i]))
        else:
            # Fold the copies into the batch axis: one vmap level, one traced pipeline for the whole group.
            n, b = j - i + 1, images.shape[0]
            tiled = jnp.broadcast_to(images[None], (n, *images.shape)).reshape(n * b, *images.shape[1:])
            group = augment_batch(tiled, recipe[i], key=keys[i])
            views.extend(group[m * b : (m + 1) * b] for m in range(n))
        i = j + 1
    return tuple(views)


# Recipes. Jitter strengths, probabilities and ranges are the canonical repositories' values.


def simclr_views(size: int, *, strength: float = 1.0) -> Recipe:
    """google-research/simclr ``data_util.preprocess_for_train``: crop (0.08, 1) resized bicubically
    (``crop_and_resize``), flip, colour jitter ``0.8 s, 0.8 s, 0.8 s, 0.2 s`` with p 0.8, grayscale p 0.2, blur p 0.5
    on both views."""
    view = ViewConfig(
        size=size,
        interpolation="cubic",
        brightness=0.8 * strength,
        contrast=0.8 * strength,
        saturation=0.8 * strength,
        hue=0.2 * strength,
        jitter_prob=0.8,
        grayscale_prob=0.2,
        blur_prob=0.5,
    )
    return (view, view)


def _byol_like(size: int, scale: tuple[float, float], interpolation: str) -> ViewConfig:
    return ViewConfig(
        size=size,
        crop_scale=scale,
        interpolation=interpolation,
        brightness=0.4,
        contrast=0.4,
        saturation=0.2,
        hue=0.1,
        jitter_prob=0.8,
        grayscale_prob=0.2,
    )


def byol_views(size: int) -> Recipe:
    """deepmind-research ``byol/utils/augmentations.py``: asymmetric views, blur 1.0 / 0.1, solarise 0 /
    0.2; crops resized bicubically (``byol/utils/dataset.py``)."""
    base = _byol_like(size, (0.08, 1.0), "cubic")
    return (
        dataclasses.replace(base, blur_prob=1.0),
        dataclasses.replace(base, blur_prob=0.1, solarize_prob=0.2),
    )


def dino_local_size(size: int, patch_size: int = 1) -> int:
    """DINO's local crop size (96 at 224) scaled to ``size`` and rounded to a whole number of ``patch_size``
    patches: ``patch_size * max(1, round(96 / 224 * size / patch_size))`` (96 at 224 with patch 16, 16 at 32
    with patch 8). The one definition used by ``dino_views``, ``DINO`` and its FLOP count."""
    for name, value in (("size", size), ("patch_size", patch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}: expected a positive int")
    return patch_size * max(1, round(96 * size / 224 / patch_size))


def dino_views(size: int, *, n_local: int = 10, local_size: int | None = None) -> Recipe:
    """facebookresearch/dino ``DataAugmentationDINO``: 2 global crops at ``size`` (scale 0.4-1; blur 1.0, and
    blur 0.1 + solarise 0.2) then ``n_local`` local crops at ``local_size`` (default ``dino_local_size(size)``;
    scale 0.05-0.4, blur 0.5); BYOL's colour jitter everywhere, bicubic resizing. The globals come first, as
    the teacher expects."""
    if n_local < 0:
        raise ValueError(f"n_local={n_local}: expected a non-negative number of local crops")
    local_size = dino_local_size(size) if local_size is None else local_size
    if not 0 < local_size <= size:
        raise ValueError(f"local_size={local_size!r}: expected a crop size in (0, {size}]")
    base = _byol_like(size, (0.4, 1.0), "cubic")
    local = dataclasses.replace(base, size=local_size, crop_scale=(0.05, 0.4), blur_prob=0.5)
    return (
        dataclasses.replace(base, blur_prob=1.0),
        dataclasses.replace(base, blur_prob=0.1, solarize_prob=0.2),
    ) + (local,) * n_local


def mae_views(size: int) -> Recipe:
    """facebookresearch/mae ``main_pretrain.py``: RandomResizedCrop(scale 0.2-1, bicubic) + flip."""
    return (ViewConfig(size=size, crop_scale=(0.2, 1.0), interpolation="cubic"),)


def clip_views(size: int) -> Recipe:
    """open_clip ``image_train_transform``: RandomResizedCrop(scale 0.9-1, bicubic), no flip (captions may
    mention left and right)."""
    return (ViewConfig(size=size, crop_scale=(0.9, 1.0), interpolation="cubic", flip_prob=0.0),)


def supervised_views(size: int) -> Recipe:
    """Inception-style crop-resize (torchvision defaults: scale 0.08-1, bilinear, as big_vision's
    ``inception_crop``) + flip."""
    return (ViewConfig(size=size),)

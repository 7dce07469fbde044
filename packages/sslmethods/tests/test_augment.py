"""Augmentations: numpy / colorsys / jax.image references for each op, identity settings, crop-box statistics,
and the recipes' contract (static shapes, float32, [0, 1], same key -> same output)."""

import colorsys
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sslmethods.blocks import augment as A
from sslmethods.blocks import augment_colour as C
from sslmethods.blocks import augment_geometry as G

rng = np.random.default_rng(0)
IMG = jnp.asarray(rng.uniform(size=(16, 16, 3)), jnp.float32)


# ---- colour ops against numpy / colorsys ----


def test_grayscale_weights():
    x = np.asarray(IMG, np.float64)
    luma = 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]
    got = np.asarray(C.to_grayscale(IMG))
    np.testing.assert_allclose(got, np.repeat(luma[..., None], 3, -1), atol=1e-6)
    one = IMG[..., :1]
    np.testing.assert_array_equal(np.asarray(C.to_grayscale(one)), np.asarray(one))


def test_solarize_threshold():
    x = jnp.asarray([[[0.0, 0.49, 0.5], [0.51, 0.9, 1.0]]], jnp.float32)
    expected = np.where(np.asarray(x) < 0.5, np.asarray(x), 1.0 - np.asarray(x))
    np.testing.assert_allclose(np.asarray(C.solarize(x)), expected, atol=1e-7)
    assert float(C.solarize(x)[0, 0, 2]) == pytest.approx(0.5)  # 0.5 itself is inverted, as PIL at 128


@pytest.mark.parametrize("factor", [0.3, 1.7])
def test_brightness_contrast_saturation_formulas(factor):
    x = np.asarray(IMG, np.float64)
    gray = (x * np.array([0.299, 0.587, 0.114])).sum(-1, keepdims=True)
    np.testing.assert_allclose(
        np.asarray(C.adjust_brightness(IMG, factor)), np.clip(x * factor, 0, 1), atol=1e-6
    )
    ref_c = np.clip(factor * x + (1 - factor) * gray.mean(), 0, 1)
    np.testing.assert_allclose(np.asarray(C.adjust_contrast(IMG, factor)), ref_c, atol=1e-6)
    ref_s = np.clip(factor * x + (1 - factor) * gray, 0, 1)
    np.testing.assert_allclose(np.asarray(C.adjust_saturation(IMG, factor)), ref_s, atol=1e-6)


def test_hsv_and_hue_against_colorsys():
    x = np.asarray(IMG, np.float64)
    x[0, 0] = [0.3, 0.3, 0.3]  # a grey pixel: hue 0, saturation 0
    img = jnp.asarray(x, jnp.float32)
    hsv = np.asarray(C.rgb_to_hsv(img))
    ref = np.array([[colorsys.rgb_to_hsv(*px) for px in row] for row in x])
    np.testing.assert_allclose(hsv, ref, atol=2e-6)
    np.testing.assert_allclose(np.asarray(C.hsv_to_rgb(C.rgb_to_hsv(img))), x, atol=2e-6)
    for delta in (-0.3, 0.1, 0.45):
        shifted = np.array([[colorsys.hsv_to_rgb((h + delta) % 1.0, s, v) for h, s, v in row] for row in ref])
        np.testing.assert_allclose(np.asarray(C.adjust_hue(img, delta)), shifted, atol=2e-6)


def test_neutral_factors_and_zero_jitter_are_identity():
    np.testing.assert_allclose(np.asarray(C.adjust_brightness(IMG, 1.0)), np.asarray(IMG), atol=1e-6)
    np.testing.assert_allclose(np.asarray(C.adjust_contrast(IMG, 1.0)), np.asarray(IMG), atol=1e-6)
    np.testing.assert_allclose(np.asarray(C.adjust_saturation(IMG, 1.0)), np.asarray(IMG), atol=1e-6)
    np.testing.assert_allclose(np.asarray(C.adjust_hue(IMG, 0.0)), np.asarray(IMG), atol=2e-6)
    out = C.color_jitter(IMG, key=jax.random.key(0), brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(IMG))


def test_brightness_jitter_stays_in_its_factor_range():
    x = jnp.full((4, 4, 3), 0.4, jnp.float32)
    keys = jax.random.split(jax.random.key(1), 64)
    out = jax.vmap(lambda k: C.color_jitter(x, key=k, brightness=0.5, contrast=0.0, saturation=0.0, hue=0.0))(
        keys
    )
    ratio = np.asarray(out[:, 0, 0, 0]) / 0.4
    assert ratio.min() >= 0.5 - 1e-6 and ratio.max() <= 1.5 + 1e-6 and ratio.std() > 0.1


# ---- geometry ----


def test_gaussian_blur_against_numpy():
    sigma, k = 1.3, 5
    r = k // 2
    x = np.asarray(IMG, np.float64)
    t = np.arange(-r, r + 1)
    w = np.exp(-(t**2) / (2 * sigma**2))
    w /= w.sum()
    p = np.pad(x, ((r, r), (0, 0), (0, 0)), mode="reflect")
    y = sum(w[i] * p[i : i + 16] for i in range(k))
    p = np.pad(y, ((0, 0), (r, r), (0, 0)), mode="reflect")
    y = sum(w[i] * p[:, i : i + 16] for i in range(k))
    np.testing.assert_allclose(np.asarray(G.gaussian_blur(IMG, sigma, k)), y, atol=1e-6)
    flat = jnp.full((8, 8, 3), 0.7, jnp.float32)
    np.testing.assert_allclose(np.asarray(G.gaussian_blur(flat, 2.0, 5)), 0.7, atol=1e-6)
    assert G.blur_kernel_size(224) == 23 and G.blur_kernel_size(96) == 9 and G.blur_kernel_size(14) == 3


def test_flip():
    np.testing.assert_array_equal(
        np.asarray(G.random_flip(IMG, key=jax.random.key(0), prob=1.0)), IMG[:, ::-1]
    )
    np.testing.assert_array_equal(np.asarray(G.random_flip(IMG, key=jax.random.key(0), prob=0.0)), IMG)


@pytest.mark.parametrize("method", ["linear", "cubic"])
def test_resized_crop_matches_jax_image(method):
    img = jnp.asarray(
        rng.uniform(0.2, 0.8, size=(20, 24, 3)), jnp.float32
    )  # away from 0/1: clipping inactive
    for box in ([0.0, 0.0, 20.0, 24.0], [3.0, 5.0, 9.0, 13.0], [2.0, 1.0, 17.0, 6.0]):
        b = jnp.asarray(box, jnp.float32)
        out = 12
        scale = jnp.asarray([out / box[2], out / box[3]], jnp.float32)
        ref = jax.image.scale_and_translate(
            img, (out, out, 3), (0, 1), scale, -jnp.asarray(box[:2]) * scale, method=method, antialias=True
        )
        np.testing.assert_allclose(
            np.asarray(G.resized_crop(img, b, out, method=method)), np.asarray(ref), atol=1e-5
        )


def test_full_crop_is_identity_or_plain_resize():
    box = jnp.asarray([0.0, 0.0, 16.0, 16.0], jnp.float32)
    for method in ("linear", "cubic"):
        np.testing.assert_allclose(
            np.asarray(G.resized_crop(IMG, box, 16, method=method)), np.asarray(IMG), atol=1e-6
        )
    # scale 1, ratio 1 on a square image: the sampled box is the whole image, so the crop is a resize
    out = G.random_resized_crop(IMG, key=jax.random.key(3), size=16, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    np.testing.assert_allclose(np.asarray(out), np.asarray(IMG), atol=1e-6)
    out = G.random_resized_crop(IMG, key=jax.random.key(3), size=8, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    ref = jax.image.resize(IMG, (8, 8, 3), "linear", antialias=True)
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), atol=1e-5)


def test_crop_box_statistics_and_fallback():
    keys = jax.random.split(jax.random.key(0), 2000)
    boxes = np.asarray(jax.vmap(lambda k: G.sample_crop_box(k, 64, 48, (0.2, 0.5), (0.5, 2.0)))(keys))
    top, left, h, w = boxes.T
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 64).all() and (left + w <= 48).all()
    assert np.array_equal(boxes, np.round(boxes))
    area = h * w / (64 * 48)
    assert area.min() > 0.2 - 0.03 and area.max() < 0.5 + 0.03  # rounding of h and w
    aspect = w / h
    assert aspect.min() > 0.5 * 0.85 and aspect.max() < 2.0 * 1.15
    assert abs(np.median(np.log(aspect))) < 0.1  # log-uniform ratio: centred on 1
    assert len(np.unique(boxes, axis=0)) > 1000
    # nothing fits a 10:1 box in a square image: torchvision's centre-crop fallback with the ratio clamped
    fb = np.asarray(G.sample_crop_box(jax.random.key(0), 40, 40, (0.5, 1.0), (10.0, 20.0)))
    np.testing.assert_array_equal(fb, [(40 - 4) // 2, 0, 4, 40])


# ---- recipes ----


def test_view_config_validation_and_recipe_details():
    with pytest.raises(ValueError, match="blur_prob"):
        A.ViewConfig(size=8, blur_prob=1.5)
    with pytest.raises(ValueError, match="size"):
        A.ViewConfig(size=0)
    v1, v2 = A.byol_views(32)
    assert (v1.blur_prob, v1.solarize_prob, v2.blur_prob, v2.solarize_prob) == (1.0, 0.0, 0.1, 0.2)
    dino = A.dino_views(224)
    assert len(dino) == 12 and [v.size for v in dino[:3]] == [224, 224, 96]
    assert dino[0].crop_scale == (0.4, 1.0) and dino[2].crop_scale == (0.05, 0.4)
    assert (dino[0].blur_prob, dino[1].blur_prob, dino[1].solarize_prob, dino[2].blur_prob) == (
        1.0,
        0.1,
        0.2,
        0.5,
    )
    assert A.dino_local_size(32) == 14 and A.mae_views(32)[0].crop_scale == (0.2, 1.0)
    clip, sup = A.clip_views(32)[0], A.supervised_views(32)[0]
    assert (clip.crop_scale, clip.flip_prob, clip.interpolation) == ((0.9, 1.0), 0.0, "cubic")
    assert (sup.crop_scale, sup.flip_prob, sup.jitter, sup.blur_prob) == ((0.08, 1.0), 0.5, False, 0.0)
    s = A.simclr_views(32)[0]
    assert (s.brightness, s.hue, s.jitter_prob, s.grayscale_prob, s.blur_prob) == (0.8, 0.2, 0.8, 0.2, 0.5)


def test_crop_resize_interpolation_is_each_recipes_canonical_one():
    """Bicubic: SimCLR (data_util.crop_and_resize: resize_bicubic), BYOL (utils/dataset.py: ResizeMethod.BICUBIC),
    DINO and open_clip (RandomResizedCrop(..., BICUBIC)), MAE (interpolation=3); bilinear: the supervised
    inception crop (big_vision inception_crop's and torchvision RandomResizedCrop's default)."""
    recipes = {"simclr": A.simclr_views(32), "byol": A.byol_views(32), "dino": A.dino_views(32, n_local=2),
               "mae": A.mae_views(32), "clip": A.clip_views(32)}
    for name, recipe in recipes.items():
        assert {v.interpolation for v in recipe} == {"cubic"}, name
    assert A.supervised_views(32)[0].interpolation == "linear"


def test_identity_view_returns_input():
    identity = A.ViewConfig(size=16, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_prob=0.0)
    out = A.augment_view(IMG, identity, key=jax.random.key(5))
    np.testing.assert_allclose(np.asarray(out), np.asarray(IMG), atol=1e-6)
    with pytest.raises(TypeError, match="float32"):
        A.augment_view(IMG.astype(jnp.bfloat16), identity, key=jax.random.key(5))


# CLIP and supervised views are MAE's pipeline (crop + optional flip) with other ranges (checked above), so
# compiling them again here would only cost time.
RECIPES = {
    "simclr": A.simclr_views,
    "byol": A.byol_views,
    "dino": lambda s: A.dino_views(s, n_local=3),
    "mae": A.mae_views,
}


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_contract(name):
    size = 16
    recipe = RECIPES[name](size)
    images = jnp.asarray(rng.uniform(size=(3, 20, 20, 3)), jnp.float32)
    images = images.at[0].set(0.0).at[1].set(1.0)  # extremes must stay in range
    fn = jax.jit(lambda x, k: A.make_views(x, recipe, key=k))
    a = fn(images, jax.random.key(0))
    b = fn(images, jax.random.key(0))
    c = fn(images, jax.random.key(1))
    assert len(a) == len(recipe)
    for view, cfg, same, other in zip(a, recipe, b, c, strict=True):
        assert view.shape == (3, cfg.size, cfg.size, 3) and view.dtype == jnp.float32
        assert float(view.min()) >= 0.0 and float(view.max()) <= 1.0
        np.testing.assert_array_equal(np.asarray(view), np.asarray(same))
        assert not np.array_equal(np.asarray(view[2]), np.asarray(other[2]))
    if name == "dino":
        assert [v.shape[1] for v in a] == [16, 16, 7, 7, 7]
        assert not np.array_equal(np.asarray(a[2]), np.asarray(a[3]))  # local crops are independent draws


@pytest.mark.slow
def test_dino_full_multicrop_single_channel():
    """The study's 2 + 10 crops on grayscale (1-channel) images: chroma ops are identities there."""
    images = jnp.asarray(rng.uniform(size=(2, 32, 32, 1)), jnp.float32)
    views = jax.jit(lambda x, k: A.make_views(x, A.dino_views(32), key=k))(images, jax.random.key(0))
    assert [v.shape for v in views] == [(2, 32, 32, 1)] * 2 + [(2, 14, 14, 1)] * 10
    assert all(bool(jnp.all((v >= 0) & (v <= 1))) for v in views)
    assert math.isfinite(float(sum(jnp.sum(v) for v in views)))

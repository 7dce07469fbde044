"""segtransfer.segmentation.device_augment: the device rescale/crop/flip against a float64 per-pixel numpy
re-derivation of PIL's resize (image) and against the host path itself (PIL's resize + crop/pad + flip, for the
same draws: masks identical, images within PIL's uint8 rounding); the draws' distribution; the choice of path."""

import itertools

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from flopdata import resize_image
from segtransfer.segmentation.data import IGNORE_INDEX, RESCALE_FACTORS, _crop_or_pad, rescaled_shape
from segtransfer.segmentation.device_augment import DeviceAugment, use_device_augment

H, W, CROP = 12, 16, 10  # non-square; the smallest factors rescale below the crop (5 x 7), the largest above it


def _inputs(batch, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (batch, H, W, 3), dtype=np.uint8)
    masks = rng.integers(0, 6, (batch, H, W), dtype=np.uint8)
    masks[:, 0, :3] = IGNORE_INDEX  # an ignore label must survive as it is
    return images, masks


def _reference_image(image, nh, nw, top, left, flip):
    """float64, pixel by pixel: output (i, j) is rescaled pixel (top + i, left + j') (j' mirrored when flipped);
    its value is PIL's bilinear filter at that pixel's centre mapped back into the source: a triangle of
    half-width max(shrink, 1) source pixels, weights normalised; 0 past the rescaled image."""
    out = np.zeros((CROP, CROP, 3))
    for i, j in itertools.product(range(CROP), range(CROP)):
        y, x = top + i, left + (CROP - 1 - j if flip else j)
        if y >= nh or x >= nw:
            continue
        total, weight_sum = np.zeros(3), 0.0
        sy, sx = H / nh, W / nw
        cy, cx = (y + 0.5) * sy, (x + 0.5) * sx
        for p, q in itertools.product(range(H), range(W)):
            wy = max(0.0, 1.0 - abs(p + 0.5 - cy) / max(sy, 1.0))
            wx = max(0.0, 1.0 - abs(q + 0.5 - cx) / max(sx, 1.0))
            total += wy * wx * image[p, q].astype(np.float64)
            weight_sum += wy * wx
        out[i, j] = total / weight_sum / 255.0
    return out


def _host(image, mask, factor, top, left, flip):
    """The host path (`data.SegmentationTransform.augment`) for given draws: PIL resize, crop/pad, flip."""
    nh, nw = rescaled_shape(H, W, CROP, RESCALE_FACTORS[factor])
    image, mask = _crop_or_pad(resize_image(image, nh, nw), resize_image(mask, nh, nw, nearest=True), top, left,
                               CROP)
    return (image[:, ::-1], mask[:, ::-1]) if flip else (image, mask)


# every factor; offsets at both ends of their range; both flips
DRAWS = [(f, t, le, fl) for f in range(len(RESCALE_FACTORS)) for (t, le, fl) in ((0, 0, False), (None, None, True))]


def _draws():
    out = []
    for f, t, le, fl in DRAWS:
        nh, nw = rescaled_shape(H, W, CROP, RESCALE_FACTORS[f])
        out.append((f, max(nh - CROP, 0) if t is None else t, max(nw - CROP, 0) if le is None else le, fl))
    return out


def test_the_device_transform_matches_a_float64_rederivation_and_the_host_path_for_given_draws():
    draws = _draws()
    images, masks = _inputs(len(draws))
    factor, top, left, flip = (jnp.asarray([d[k] for d in draws]) for k in range(4))
    aug = DeviceAugment((H, W), CROP)
    pixels, labels = jax.jit(aug.apply)(jnp.asarray(images), jnp.asarray(masks), (factor, top, left, flip))
    pixels, labels = np.asarray(pixels), np.asarray(labels)
    assert pixels.shape == (len(draws), CROP, CROP, 3) and labels.dtype == np.int32
    sizes = set()
    for b, (f, t, le, fl) in enumerate(draws):
        nh, nw = rescaled_shape(H, W, CROP, RESCALE_FACTORS[f])
        sizes.add((nh, nw))
        np.testing.assert_allclose(pixels[b], _reference_image(images[b], nh, nw, t, le, fl), atol=2e-6)
        host_image, host_mask = _host(images[b], masks[b], f, t, le, fl)
        np.testing.assert_array_equal(labels[b], host_mask)  # same geometry, same nearest-neighbour ties
        # PIL rounds to uint8 after each of its two passes: at most about one grey level apart
        assert np.abs(pixels[b] - host_image / 255.0).max() <= 1.5 / 255
    assert min(sizes) < (CROP, CROP) < max(sizes)  # padded and cropped cases both tested


def test_padding_is_zero_image_and_ignore_mask_bottom_right():
    aug = DeviceAugment((H, W), CROP)
    images = np.full((1, H, W, 3), 200, np.uint8)
    masks = np.full((1, H, W), 3, np.uint8)
    pixels, labels = aug.apply(jnp.asarray(images), jnp.asarray(masks),
                               (jnp.asarray([0]), jnp.asarray([0]), jnp.asarray([0]), jnp.asarray([False])))
    nh, nw = rescaled_shape(H, W, CROP, RESCALE_FACTORS[0])
    expected_mask = np.full((CROP, CROP), IGNORE_INDEX)
    expected_mask[:nh, :nw] = 3
    np.testing.assert_array_equal(np.asarray(labels[0]), expected_mask)
    expected_image = np.zeros((CROP, CROP, 3))
    expected_image[:nh, :nw] = 200 / 255
    np.testing.assert_allclose(np.asarray(pixels[0]), expected_image, atol=1e-6)


def test_draws_cover_every_factor_uniformly_and_every_offset():
    aug = DeviceAugment((H, W), CROP)
    n = 14_000
    factor, top, left, flip = (np.asarray(x) for x in jax.jit(aug.draw, static_argnums=1)(jr.key(3), n))
    counts = np.bincount(factor, minlength=len(RESCALE_FACTORS))
    # uniform over 7 factors: 2000 each, binomial sd ~38; 5 sd
    assert len(counts) == len(RESCALE_FACTORS) and np.abs(counts - n / 7).max() < 190
    assert abs(flip.mean() - 0.5) < 0.025
    for f in range(len(RESCALE_FACTORS)):
        nh, nw = rescaled_shape(H, W, CROP, RESCALE_FACTORS[f])
        chosen = factor == f
        assert set(top[chosen].tolist()) == set(range(max(nh - CROP, 0) + 1))
        assert set(left[chosen].tolist()) == set(range(max(nw - CROP, 0) + 1))
    again = jax.jit(aug.draw, static_argnums=1)(jr.key(3), n)
    assert all(np.array_equal(a, np.asarray(b)) for a, b in zip((factor, top, left, flip), again, strict=True))


def test_the_hook_in_a_jitted_step_gives_the_training_batch():
    aug = DeviceAugment((H, W), CROP)
    images, masks = _inputs(4)
    out = jax.jit(lambda batch, key: aug(batch, step=jnp.int32(0), key=key))(
        {"image": jnp.asarray(images), "mask": jnp.asarray(masks)}, jr.key(0))
    assert out["image"].shape == (4, CROP, CROP, 3) and out["image"].dtype == jnp.float32
    assert out["mask"].shape == (4, CROP, CROP) and out["mask"].dtype == jnp.int32
    assert set(np.unique(np.asarray(out["mask"]))) <= set(range(6)) | {IGNORE_INDEX}


def test_which_path_a_run_takes():
    assert use_device_augment("device", photometric="none", image_shape=(64, 64, 3))
    assert use_device_augment("auto", photometric="none", image_shape=(64, 64, 3))
    assert not use_device_augment("auto", photometric="byol", image_shape=(64, 64, 3))
    assert not use_device_augment("auto", photometric="none", image_shape=None)
    assert not use_device_augment("host", photometric="none", image_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="vary in size"):
        use_device_augment("device", photometric="none", image_shape=None)
    with pytest.raises(ValueError, match="photometric='byol'"):
        use_device_augment("device", photometric="byol", image_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="augment='gpu'"):
        use_device_augment("gpu", photometric="none", image_shape=(64, 64, 3))

"""segtransfer.segmentation.photometric: BYOL's color_transform (the study's segmentation jitter) against float64
colorsys re-derivations of each op, its draws, and mmseg's PhotoMetricDistortion as an option (the pipeline's default:
test_data.py)."""

import colorsys
import itertools

import numpy as np
import pytest
from segtransfer.segmentation.photometric import (
    ByolColourDraw,
    apply_byol_colour,
    byol_colour_transform,
    draw_byol_colour,
    hsv_to_rgb,
    mmseg_photometric_distortion,
    rgb_to_hsv,
)


def _image(seed, shape=(4, 5, 3)):
    return np.random.default_rng(seed).uniform(0, 1, shape).astype(np.float32)


def _per_pixel(image, fn):
    out = np.empty(image.shape, np.float64)
    for y, x in itertools.product(range(image.shape[0]), range(image.shape[1])):
        out[y, x] = fn(*image[y, x].astype(np.float64))
    return out


def _reference_op(image, op, value):
    """BYOL's four ops in float64 (colorsys for HSV), each clipped to [0, 1] as BYOL's cond_fn does."""
    x = image.astype(np.float64)
    if op == 0:
        out = x + value
    elif op == 1:
        mean = x.mean(axis=(0, 1))
        out = value * (x - mean) + mean
    elif op == 2:
        def f(r, g, b):
            h, s, v = colorsys.rgb_to_hsv(r, g, b)
            return colorsys.hsv_to_rgb(h, min(max(s * value, 0.0), 1.0), v)

        out = _per_pixel(x, f)
    else:
        def f(r, g, b):
            h, s, v = colorsys.rgb_to_hsv(r, g, b)
            return colorsys.hsv_to_rgb((h + value) % 1.0, s, v)

        out = _per_pixel(x, f)
    return np.clip(out, 0.0, 1.0)


def test_hsv_round_trip_matches_colorsys():
    image = _image(0)
    hsv = rgb_to_hsv(image)
    np.testing.assert_allclose(hsv, _per_pixel(image, colorsys.rgb_to_hsv), atol=1e-6)
    np.testing.assert_allclose(hsv_to_rgb(hsv), image, atol=1e-6)


@pytest.mark.parametrize("op, value", [(0, 0.07), (0, -0.09), (1, 1.08), (1, 0.92), (2, 1.1), (2, 0.9),
                                       (3, 0.06), (3, -0.1)])
def test_each_byol_op_matches_a_float64_reference(op, value):
    image = _image(op)
    values = [None, None, None, None]
    values[op] = value
    draw = ByolColourDraw(True, True, False, (0, 1, 2, 3), *values)
    np.testing.assert_allclose(apply_byol_colour(image, draw), _reference_op(image, op, value), atol=2e-6)


def test_ops_run_in_the_drawn_order_then_grey():
    image = _image(9)
    values = (0.05, 1.1, 0.9, -0.04)
    for order in [(3, 1, 0, 2), (2, 0, 3, 1)]:
        draw = ByolColourDraw(True, True, True, order, *values)
        expected = image
        for op in order:
            expected = _reference_op(expected, op, values[op])
        grey = expected @ np.asarray([0.2989, 0.5870, 0.1140])  # BYOL's _to_grayscale weights
        np.testing.assert_allclose(apply_byol_colour(image, draw), np.repeat(grey[..., None], 3, -1), atol=1e-5)
    # No jitter, no grey, or not applied at all
    np.testing.assert_array_equal(apply_byol_colour(image, ByolColourDraw(False, True, True, (0, 1, 2, 3),
                                                                          *values)), image)
    assert apply_byol_colour(image, ByolColourDraw(True, False, False, (0, 1, 2, 3), *values)) is not image
    np.testing.assert_array_equal(apply_byol_colour(image, ByolColourDraw(True, False, False, (0, 1, 2, 3),
                                                                          *values)), image)


def test_draws_follow_the_studys_settings():
    """A.4: brightness = contrast = saturation = hue = 0.1, apply_prob 0.5; color_transform's defaults
    color_jitter_prob 0.8 and to_grayscale_prob 0.2."""
    rng = np.random.default_rng(0)
    draws = [draw_byol_colour(rng) for _ in range(4000)]
    for field, p in (("apply", 0.5), ("jitter", 0.8), ("grayscale", 0.2)):
        assert abs(np.mean([getattr(d, field) for d in draws]) - p) < 0.03
    brightness, hue = np.asarray([d.brightness for d in draws]), np.asarray([d.hue for d in draws])
    contrast, saturation = np.asarray([d.contrast for d in draws]), np.asarray([d.saturation for d in draws])
    for values, lo, hi in ((brightness, -0.1, 0.1), (hue, -0.1, 0.1), (contrast, 0.9, 1.1), (saturation, 0.9, 1.1)):
        assert lo <= values.min() < lo + 0.01 and hi - 0.01 < values.max() <= hi
    assert len({d.order for d in draws}) == 24  # every order of the four ops
    assert draw_byol_colour(rng, hue=0.0).hue is None  # strength 0: the op is skipped
    with pytest.raises(ValueError, match=r"apply_prob=1\.5; expected a probability in \[0, 1\]"):
        draw_byol_colour(rng, apply_prob=1.5)


def test_mmseg_option_is_stronger_than_the_studys():
    """mmseg's contrast/saturation ranges are 5x the study's (+-0.5 vs +-0.1); on random block images its mean
    absolute pixel change is about 2.3x the study's transform (2000 draws; 3.2x without BYOL's grey step)."""
    rng = np.random.default_rng(0)
    change = {"byol": [], "mmseg": []}
    for _ in range(500):
        image = np.kron(rng.uniform(0.1, 0.9, (4, 4, 3)), np.ones((4, 4, 1))).astype(np.float32)
        change["byol"].append(np.abs(byol_colour_transform(image, rng) - image).mean())
        change["mmseg"].append(np.abs(mmseg_photometric_distortion(image, rng) - image).mean())
    assert np.mean(change["mmseg"]) > 1.8 * np.mean(change["byol"])
    out = mmseg_photometric_distortion(image, rng, probability=1.0)
    assert out.dtype == np.float32 and out.shape == image.shape and 0 <= out.min() and out.max() <= 1

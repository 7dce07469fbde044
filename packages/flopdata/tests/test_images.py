"""flopdata.images: decoding and resizing against numpy references."""

import io

import numpy as np
import pytest
from flopdata import decode_gray, decode_rgb, encode_png, resize_image
from PIL import Image


def _encoded(array, fmt="PNG"):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def test_png_round_trip_and_mode_conversion():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(decode_rgb(encode_png(rgb), where="x"), rgb)
    gray = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    np.testing.assert_array_equal(decode_gray(encode_png(gray[..., None]), where="x"), gray)
    # a grey PNG read as RGB repeats the channel; an RGB one read as grey uses ITU-R 601-2 luma (PIL "L")
    np.testing.assert_array_equal(decode_rgb(_encoded(gray), where="x"), np.repeat(gray[..., None], 3, -1))
    luma = (rgb.astype(np.float64) @ [299, 587, 114]) / 1000
    np.testing.assert_allclose(decode_gray(_encoded(rgb), where="x"), luma, atol=1.0)
    jpeg = decode_rgb(_encoded(np.full((8, 8, 3), 90, np.uint8), "JPEG"), where="x")
    assert jpeg.shape == (8, 8, 3) and np.abs(jpeg.astype(int) - 90).max() <= 2


def test_corrupt_bytes_name_the_example():
    truncated = encode_png(np.zeros((16, 16, 3), np.uint8))[:40]
    with pytest.raises(ValueError, match=r"corrupt image in fmnist_scenes train\[3\] mask: "):
        decode_gray(truncated, where="fmnist_scenes train[3] mask")


def test_nearest_resize_matches_pixel_centre_sampling():
    labels = np.arange(12 * 16, dtype=np.uint8).reshape(12, 16)
    out = resize_image(labels, 8, 11, nearest=True)
    rows = np.floor((np.arange(8) + 0.5) * 12 / 8).astype(int)
    cols = np.floor((np.arange(11) + 0.5) * 16 / 11).astype(int)
    np.testing.assert_array_equal(out, labels[np.ix_(rows, cols)])


def test_bilinear_resize_keeps_constants_and_same_size_is_identity():
    image = np.full((6, 9, 3), (10, 200, 77), np.uint8)
    np.testing.assert_array_equal(resize_image(image, 13, 4), np.full((13, 4, 3), (10, 200, 77), np.uint8))
    assert resize_image(image, 6, 9) is image
    # a linear ramp upsampled 2x stays between its neighbours (no ringing)
    ramp = np.repeat(np.linspace(0, 240, 8).astype(np.uint8)[None, :, None], 3, -1)
    up = resize_image(ramp, 2, 16)[0, :, 0].astype(int)
    assert (np.diff(up) >= 0).all() and up[0] == 0 and up[-1] == 240
    with pytest.raises(ValueError, match=r"height=0, width=4; expected a positive size"):
        resize_image(image, 0, 4)

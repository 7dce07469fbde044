"""Sin-cos tables against a loop-by-loop numpy reference (MAE's formula), and position-embedding
interpolation."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import vitcore


def mae_sincos_reference(dim, gh, gw):
    """facebookresearch/mae util/pos_embed.py, written out element by element in float64."""
    table = np.zeros((gh * gw, dim))
    quarter = dim // 4
    for r in range(gh):
        for c in range(gw):
            row = table[r * gw + c]
            for i in range(quarter):
                omega = 1.0 / 10000 ** (i / quarter)
                row[i] = math.sin(c * omega)  # first half: the column (w) coordinate
                row[quarter + i] = math.cos(c * omega)
                row[2 * quarter + i] = math.sin(r * omega)  # second half: the row (h) coordinate
                row[3 * quarter + i] = math.cos(r * omega)
    return table


@pytest.mark.parametrize(("dim", "grid"), [(32, (4, 4)), (64, (3, 5)), (768, (14, 14))])
def test_sincos_matches_reference(dim, grid):
    table = vitcore.sincos_2d(dim, grid)
    assert table.shape == (grid[0] * grid[1], dim) and table.dtype == np.float32
    np.testing.assert_allclose(table, mae_sincos_reference(dim, *grid), atol=1e-6)


def test_sincos_model_uses_the_table():
    m = vitcore.create("vit-test", key=jax.random.key(0), pos_embed="sincos", depth=1)
    x = jax.random.normal(jax.random.key(1), (1, 32, 32, 3))
    embedded, patches = eqx.filter_jit(lambda m, x: (m._embed(x[0], None), m.patch_embed(m.normalise(x[0]))))(m, x)
    patches = patches.reshape(16, 32)
    np.testing.assert_allclose(embedded[1:], patches + mae_sincos_reference(32, 4, 4), atol=1e-5)
    np.testing.assert_allclose(embedded[0], m.cls_token[0], atol=1e-7)  # class token: zero position embedding
    with pytest.raises(ValueError, match="multiple of 4"):
        vitcore.get_config("vit-test", pos_embed="sincos", width=34, num_heads=2)


def _with_pos(model, table):
    return eqx.tree_at(lambda m: m.pos_embed, model, jnp.asarray(table, jnp.float32))


def test_interpolate_same_size_is_identity_and_prefix_kept():
    m = vitcore.create("vit-test", key=jax.random.key(0))
    same = vitcore.interpolate_pos_embed(m, 32)
    np.testing.assert_allclose(same.pos_embed, m.pos_embed, atol=1e-6)
    big = vitcore.interpolate_pos_embed(m, 64)
    assert big.pos_embed.shape == (1 + 64, 32) and big.grid_size == (8, 8) and big.config.image_size == 64
    np.testing.assert_array_equal(big.pos_embed[0], m.pos_embed[0])
    out = eqx.filter_jit(lambda m, x: m(x))(big, jnp.zeros((1, 64, 64, 3)))
    assert out.patch_tokens.shape == (1, 8, 8, 32)
    with pytest.raises(ValueError, match="image_size"):
        vitcore.interpolate_pos_embed(m, 36)


def test_interpolate_reproduces_smooth_fields():
    """Upsampling 8x8 -> 16x16 of a smooth field sampled at pixel centres: bicubic keeps linear ramps exact
    away
    from the border and smooth fields close everywhere in the interior."""
    m = vitcore.create("vit-test", key=jax.random.key(0), image_size=64)  # grid 8x8

    def field(g):
        centres = (np.arange(g) + 0.5) / g  # half-pixel centres in [0, 1]
        yy, xx = np.meshgrid(centres, centres, indexing="ij")
        chans = [2 * xx - yy, np.sin(2 * np.pi * xx / 2) * np.cos(np.pi * yy / 2)]
        return np.stack([chans[i % 2] for i in range(32)], -1).reshape(g * g, 32)

    table = np.concatenate([np.full((1, 32), 7.0), field(8)])
    big = vitcore.interpolate_pos_embed(_with_pos(m, table), 128)
    got = np.asarray(big.pos_embed[1:]).reshape(16, 16, 32)
    want = field(16).reshape(16, 16, 32)
    inner = slice(3, 13)
    np.testing.assert_allclose(got[inner, inner, 0], want[inner, inner, 0], atol=1e-5)  # linear: exact
    np.testing.assert_allclose(got[inner, inner, 1], want[inner, inner, 1], atol=2e-2)  # smooth: close
    np.testing.assert_allclose(big.pos_embed[0], 7.0)
    small = vitcore.interpolate_pos_embed(_with_pos(m, table), 32)  # downsampling 8x8 -> 4x4
    assert small.pos_embed.shape == (17, 32)
    assert np.all(np.isfinite(np.asarray(small.pos_embed)))


def test_interpolate_sincos_recomputes_table():
    m = vitcore.create("vit-test", key=jax.random.key(0), pos_embed="sincos")
    big = vitcore.interpolate_pos_embed(m, (48, 64))
    assert big.grid_size == (6, 8) and big.pos_embed is None
    mean_pixels = jnp.broadcast_to(jnp.asarray(m.config.mean, jnp.float32), (48, 64, 3))  # normalise to 0
    embedded = eqx.filter_jit(lambda m, x: m._embed(x, None))(big, mean_pixels)
    np.testing.assert_allclose(embedded[1:] - big.patch_embed.bias, mae_sincos_reference(32, 6, 8), atol=1e-5)

"""FCN head: shapes/dtypes for several sizes, float64 numpy re-derivation of the forward, torch-style bilinear."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from segtransfer.segmentation.fcn_head import FCNHead, upsample_bilinear

# jitted call (size is static): one compile per shape instead of op-by-op dispatch
_call = eqx.filter_jit(lambda h, t, size, key=None, inference=True: h(t, size, key=key, inference=inference))


def _torch_bilinear_align_corners_false(x, out_h, out_w):
    """PyTorch's F.interpolate(mode="bilinear", align_corners=False) on NHWC, float64, written out."""
    _, h, w, _ = x.shape

    def coords(n_out, n_in):
        src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        src = np.maximum(src, 0.0)  # torch clamps negative source coordinates to 0
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0

    y0, y1, wy = coords(out_h, h)
    x0, x1, wx = coords(out_w, w)
    top = x[:, y0][:, :, x0] * (1 - wx)[None, None, :, None] + x[:, y0][:, :, x1] * wx[None, None, :, None]
    bot = x[:, y1][:, :, x0] * (1 - wx)[None, None, :, None] + x[:, y1][:, :, x1] * wx[None, None, :, None]
    return top * (1 - wy)[None, :, None, None] + bot * wy[None, :, None, None]


@pytest.mark.parametrize(("hw", "out"), [((4, 4), (32, 32)), ((3, 5), (24, 40)), ((4, 6), (30, 45))])
def test_upsample_matches_torch_align_corners_false(hw, out):
    x = np.random.default_rng(0).standard_normal((2, *hw, 3))
    got = upsample_bilinear(jnp.asarray(x, jnp.float32), out)
    np.testing.assert_allclose(np.asarray(got), _torch_bilinear_align_corners_false(x, *out), atol=1e-5)


def _numpy_head(head, tokens):
    """float64 re-derivation: conv3x3 (cross-correlation, zero pad 1) -> GroupNorm(eps 1e-5) -> ReLU, x2, 1x1."""
    x = np.asarray(tokens, np.float64)  # b h w c
    for conv, norm in zip(head.convs, head.norms, strict=True):
        wgt = np.asarray(conv.weight, np.float64)  # out, in, 3, 3
        pad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        h, w = x.shape[1:3]
        y = np.zeros((*x.shape[:3], wgt.shape[0]))
        for dy in range(3):
            for dx in range(3):
                y += np.einsum("bhwi,oi->bhwo", pad[:, dy : dy + h, dx : dx + w], wgt[:, :, dy, dx])
        g = norm.groups
        b, hh, ww, c = y.shape
        yg = y.reshape(b, hh, ww, g, c // g)
        mean = yg.mean(axis=(1, 2, 4), keepdims=True)
        var = yg.var(axis=(1, 2, 4), keepdims=True)
        y = ((yg - mean) / np.sqrt(var + norm.eps)).reshape(b, hh, ww, c)
        y = y * np.asarray(norm.weight)[None, None, None, :] + np.asarray(norm.bias)[None, None, None, :]
        x = np.maximum(y, 0.0)
    wc = np.asarray(head.classifier.weight, np.float64)[:, :, 0, 0]
    return np.einsum("bhwi,oi->bhwo", x, wc) + np.asarray(head.classifier.bias, np.float64)[:, 0, 0]


def test_forward_matches_numpy_reference():
    k_head, k_x = jr.split(jr.key(0))
    head = FCNHead(12, 5, channels=16, norm_groups=4, key=k_head)
    tokens = jr.normal(k_x, (2, 4, 3, 12))
    got = _call(head, tokens, (4, 3))  # same size: upsampling is the identity
    np.testing.assert_allclose(np.asarray(got), _numpy_head(head, np.asarray(tokens)), atol=1e-4)


@pytest.mark.parametrize(("grid", "size"), [((4, 4), (32, 32)), ((2, 3), (16, 24)), ((8, 8), (64, 64))])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_output_shape_and_dtype(grid, size, dtype):
    head = FCNHead(32, 7, channels=32, key=jr.key(1))
    tokens = jnp.ones((2, *grid, 32), dtype)
    out = _call(head, tokens, size)
    assert out.shape == (2, *size, 7)
    assert out.dtype == jnp.float32


def test_dropout_drops_channels_only_in_training():
    head = FCNHead(8, 3, channels=32, dropout=0.5, key=jr.key(2))
    tokens = jr.normal(jr.key(3), (2, 4, 4, 8))
    a = _call(head, tokens, (4, 4))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(_call(head, tokens, (4, 4), key=jr.key(9))))
    b = _call(head, tokens, (4, 4), key=jr.key(4), inference=False)
    c = _call(head, tokens, (4, 4), key=jr.key(5), inference=False)
    assert not np.allclose(np.asarray(b), np.asarray(c))
    with pytest.raises(ValueError, match="key"):
        head(tokens, (4, 4), inference=False)


def test_gradients_flow_to_every_parameter():
    head = FCNHead(8, 3, channels=16, norm_groups=4, key=jr.key(6))
    tokens = jr.normal(jr.key(7), (2, 4, 4, 8))

    def loss(h):
        return jnp.sum(h(tokens, (8, 8)) ** 2)

    grads = eqx.filter_jit(eqx.filter_grad(loss))(head)
    for g in jax.tree.leaves(grads):
        assert np.all(np.isfinite(np.asarray(g))) and np.any(np.asarray(g) != 0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="norm_groups"):
        FCNHead(8, 3, channels=30, norm_groups=32, key=jr.key(0))
    with pytest.raises(ValueError, match="dropout"):
        FCNHead(8, 3, dropout=1.0, key=jr.key(0))
    head = FCNHead(8, 3, channels=32, key=jr.key(0))
    with pytest.raises(ValueError, match="tokens.shape"):
        head(jnp.ones((1, 2, 2, 9)), (4, 4))

"""Simple feature pyramid: shapes and strides; the layers against PyTorch."""

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
import torch
from segtransfer.detection import SimpleFeaturePyramid
from segtransfer.detection.layers import ChannelNorm, Conv2d, ConvTranspose2x2


def test_pyramid_levels_and_strides():
    pyramid = SimpleFeaturePyramid(32, channels=16, key=jr.key(0))
    x = jr.normal(jr.key(1), (2, 8, 8, 32))
    levels = eqx.filter_jit(pyramid)(x)
    sizes = [lv.shape[1:3] for lv in levels]
    assert sizes == [(32, 32), (16, 16), (8, 8), (4, 4), (2, 2)] and {lv.shape[-1] for lv in levels} == {16}
    assert pyramid.strides(16) == (4, 8, 16, 32, 64)
    # the top level is a stride-2 subsampling of the one below (max-pool with kernel 1)
    np.testing.assert_array_equal(np.asarray(levels[4]), np.asarray(levels[3][:, ::2, ::2]))
    # every level ends with a channel LayerNorm: zero mean, unit variance per pixel at initialisation
    for level in levels:
        np.testing.assert_allclose(np.asarray(level.mean(-1)), 0.0, atol=1e-5)
    with pytest.raises(ValueError, match=r"scale_factors=\(3.0,\)"):
        SimpleFeaturePyramid(32, scale_factors=(3.0,), key=jr.key(0))


def test_layers_match_pytorch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 6, 4)).astype(np.float32)
    up = ConvTranspose2x2(4, 3, key=jr.key(0))
    t_up = torch.nn.ConvTranspose2d(4, 3, 2, stride=2)
    t_up.weight.data = torch.from_numpy(np.asarray(up.weight).transpose(2, 3, 0, 1).copy())  # [cin, cout, 2, 2]
    t_up.bias.data = torch.from_numpy(rng.normal(size=3).astype(np.float32))
    up = ConvTranspose2x2.__new__(ConvTranspose2x2)
    object.__setattr__(up, "weight", jnp.asarray(t_up.weight.data.numpy().transpose(2, 3, 0, 1)))
    object.__setattr__(up, "bias", jnp.asarray(t_up.bias.data.numpy()))
    expected = t_up(torch.from_numpy(x.transpose(2, 0, 1))[None])[0].detach().numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(np.asarray(up(jnp.asarray(x))), expected, atol=1e-5)
    conv = Conv2d(4, 3, 3, key=jr.key(1))
    t_conv = torch.nn.Conv2d(4, 3, 3, padding=1)
    t_conv.weight.data = torch.from_numpy(np.asarray(conv.weight).transpose(3, 2, 0, 1).copy())
    t_conv.bias.data.zero_()
    expected = t_conv(torch.from_numpy(x.transpose(2, 0, 1))[None])[0].detach().numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(np.asarray(conv(jnp.asarray(x))), expected, atol=1e-5)
    ln = torch.nn.LayerNorm(4, eps=1e-6)
    np.testing.assert_allclose(np.asarray(ChannelNorm(4)(jnp.asarray(x))), ln(torch.from_numpy(x)).detach().numpy(),
                               atol=1e-5)


def _uniform_bound(values):
    """(max |v|, std * sqrt(3)): both are the bound b of a uniform(-b, b) sample."""
    values = np.asarray(values, np.float64).ravel()
    return np.max(np.abs(values)), np.std(values) * np.sqrt(3.0)


def test_pyramid_is_initialised_as_detectron2_simple_feature_pyramid():
    """detectron2's SimpleFeaturePyramid: c2_xavier_fill (kaiming_uniform_(a=1)) on the 1x1 and 3x3 convs, torch's
    default init on the ConvTranspose2d layers, LayerNorm 1 / 0; the bounds are read off torch's own layers."""
    width, channels = 64, 96
    pyramid = SimpleFeaturePyramid(width, channels=channels, key=jr.key(0))
    torch.manual_seed(0)
    stage4 = pyramid.stages[0]
    ref_up = torch.nn.ConvTranspose2d(width, width // 2, 2, 2)  # torch's default init
    np.testing.assert_allclose(_uniform_bound(stage4.up[0].weight), _uniform_bound(ref_up.weight.detach().numpy()),
                               rtol=0.05)
    # 32 biases are too few for a spread estimate: both lie within the same bound, ours not all zero.
    bound = 1.0 / np.sqrt(width // 2 * 4)
    assert np.max(np.abs(ref_up.bias.detach().numpy())) <= bound and np.max(np.abs(stage4.up[0].bias)) <= bound
    assert np.std(np.asarray(stage4.up[0].bias)) > bound / 4
    for conv, c_in, k in ((stage4.lateral, width // 4, 1), (stage4.output, channels, 3),
                          (pyramid.stages[2].lateral, width, 1)):
        ref = torch.nn.Conv2d(c_in, channels, k, bias=False)
        torch.nn.init.kaiming_uniform_(ref.weight, a=1)  # detectron2 weight_init.c2_xavier_fill
        np.testing.assert_allclose(_uniform_bound(conv.weight), _uniform_bound(ref.weight.detach().numpy()),
                                   rtol=0.05)
        np.testing.assert_allclose(_uniform_bound(conv.weight)[0], np.sqrt(3.0 / (c_in * k * k)), rtol=0.01)
        assert conv.bias is None
    for norm in (stage4.up_norms[0], stage4.lateral_norm, stage4.output_norm):
        assert np.all(np.asarray(norm.scale) == 1.0) and np.all(np.asarray(norm.bias) == 0.0)

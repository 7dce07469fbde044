"""NFNet: parameter counts (abstract), weight standardisation and convolution against float64 numpy, the whole
forward against timm's `NormFreeNet`, signal propagation at init, jit + grad, errors."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import vitcore
from timm.models import nfnet
from vitcore.nfnet_block import nf_activation
from vitcore.ws_conv import WSConv2d

# timm 1.0.31 `timm.create_model(name, num_classes=1000)` parameter counts: dm_nfnet_f0..f6 are DeepMind's
# published models. timm has no dm_nfnet_f7; its `nfnet_f7` is the same network without the 96 SkipInit
# scalars (one per block) that DeepMind's layout has: 499,503,992 + 96.
TIMM_COUNTS_1000 = {
    "nfnet-f0": 71_489_284,
    "nfnet-f1": 132_634_256,
    "nfnet-f2": 193_779_228,
    "nfnet-f3": 254_924_200,
    "nfnet-f4": 316_069_172,
    "nfnet-f5": 377_214_144,
    "nfnet-f6": 438_359_116,
    "nfnet-f7": 499_503_992 + 96,
}

run = eqx.filter_jit(lambda m, x, **kw: m(x, **kw))


@pytest.fixture(scope="module")
def model():
    return vitcore.create("nfnet-test", key=jax.random.key(0), num_classes=10)


def _abstract_count(preset, **kw):
    m = eqx.filter_eval_shape(vitcore.create, preset, key=jax.random.key(0), **kw)
    leaves = jax.tree.leaves(m)
    assert all(isinstance(x, jax.ShapeDtypeStruct) for x in leaves)  # nothing was allocated
    return sum(math.prod(x.shape) for x in leaves)


@pytest.mark.parametrize("preset", sorted(TIMM_COUNTS_1000))
def test_param_count_with_1000_classes_matches_deepmind_models(preset):
    assert _abstract_count(preset, num_classes=1000) == TIMM_COUNTS_1000[preset]


def test_layout_of_f0_and_plus_variant():
    f0 = eqx.filter_eval_shape(vitcore.create, "nfnet-f0", key=jax.random.key(0))
    assert [c.weight.shape[0] for c in f0.stem] == [16, 32, 64, 128]
    assert [len(s) for s in f0.stages] == [1, 2, 6, 3]
    assert f0.final_conv.weight.shape == (3072, 1536, 1, 1) and f0.num_features == 3072
    assert f0.stages[2][0].conv1.groups == 6 and f0.stages[2][0].conv1.weight.shape == (768, 128, 3, 3)
    plus = vitcore.get_config("nfnet-f3plus")
    assert plus.widths == (384, 768, 2048, 2048) and plus.depths == (4, 8, 24, 12)
    # Paper: beta = 1 / expected std, variance reset to 1 after each transition, + alpha^2 per block.
    c = vitcore.get_config("nfnet-f1")
    var, want = 1.0, []
    for depth in c.depths:
        stage = []
        for i in range(depth):
            stage.append(1 / math.sqrt(var))
            var = (1.0 if i == 0 else var) + 0.2**2
        want.append(stage)
    np.testing.assert_allclose(np.concatenate(c.betas), np.concatenate(want))
    rates = vitcore.get_config("nfnet-f0", drop_path=0.1).drop_path_rates  # DM: rate * block index / blocks
    np.testing.assert_allclose(rates[3], [0.1 * 9 / 12, 0.1 * 10 / 12, 0.1 * 11 / 12])


def dm_standardize(weight_oihw, gain, eps=1e-4):
    """DeepMind's WSConv2D.standardize_weight in haiku's HWIO layout, float64."""
    w = np.asarray(weight_oihw, np.float64).transpose(2, 3, 1, 0)
    mean = w.mean(axis=(0, 1, 2), keepdims=True)
    var = w.var(axis=(0, 1, 2), keepdims=True)
    fan_in = np.prod(w.shape[:-1])
    scale = 1 / np.sqrt(np.maximum(var * fan_in, eps)) * np.asarray(gain, np.float64)
    return (w * scale - mean * scale).transpose(3, 2, 0, 1)


def test_weight_standardisation_matches_deepmind():
    rng = np.random.default_rng(0)
    w = rng.normal(0.3, 2.0, size=(5, 4, 3, 3))
    w[2] = 0.7  # a dead unit: eps keeps it finite (max(N * var, eps))
    gain = rng.uniform(0.5, 2.0, size=5)
    got = vitcore.standardize_weight(jnp.asarray(w, jnp.float32), jnp.asarray(gain, jnp.float32))
    want, live_units = dm_standardize(w, gain), [0, 1, 3, 4]
    np.testing.assert_allclose(np.asarray(got)[live_units], want[live_units], rtol=1e-5, atol=1e-6)
    # The dead unit is 0.7 * 100 * gain - 0.7 * 100 * gain: zero up to float32 cancellation.
    np.testing.assert_allclose(np.asarray(got)[2], want[2], atol=1e-4)
    live = np.asarray(got)[live_units]
    np.testing.assert_allclose(live.sum(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose((live**2).sum(axis=(1, 2, 3)), gain[live_units] ** 2, rtol=1e-4)


def _np_conv_same(x, w, stride, groups):
    """float64 grouped cross-correlation of one HWC image with an OIHW kernel, TF 'SAME' padding."""
    h, wd, _ = x.shape
    o, ig, k, _ = w.shape
    oh, ow = -(-h // stride), -(-wd // stride)
    pads = [max((n_out - 1) * stride + k - n, 0) for n_out, n in ((oh, h), (ow, wd))]
    x = np.pad(x, ((pads[0] // 2, pads[0] - pads[0] // 2), (pads[1] // 2, pads[1] - pads[1] // 2), (0, 0)))
    out = np.zeros((oh, ow, o))
    per_group = o // groups
    for j in range(o):
        g = j // per_group
        for a in range(oh):
            for b in range(ow):
                patch = x[a * stride : a * stride + k, b * stride : b * stride + k, g * ig : (g + 1) * ig]
                out[a, b, j] = np.sum(patch * w[j].transpose(1, 2, 0))
    return out


def test_ws_conv_matches_numpy_grouped_strided_same_padding():
    conv = WSConv2d(4, 6, 3, key=jax.random.key(1), stride=2, groups=2)
    conv = eqx.tree_at(lambda c: (c.gain, c.bias), conv, (jnp.linspace(0.5, 1.5, 6), jnp.linspace(-1, 1, 6)))
    x = np.random.default_rng(2).normal(size=(6, 6, 4))
    got = eqx.filter_jit(lambda c, x: c(x))(conv, jnp.asarray(x, jnp.float32))
    kernel = dm_standardize(conv.weight, conv.gain)
    want = _np_conv_same(x, kernel, 2, 2) + np.linspace(-1, 1, 6)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)


def test_forward_shapes_and_feature_info(model):
    images = jax.random.normal(jax.random.key(3), (2, 64, 64, 3))
    out = run(model, images, intermediates=(0, 1, 2, 3))
    assert out.logits.shape == (2, 10) and out.pooled.shape == (2, 256)
    assert out.patch_tokens.shape == (2, 2, 2, 256)
    info = model.feature_info
    assert [(f.channels, f.stride) for f in info] == [(32, 4), (64, 8), (128, 16), (128, 32)]
    for feat, f in zip(out.intermediates, info, strict=True):
        assert feat.shape == (2, 64 // f.stride, 64 // f.stride, f.channels)
    np.testing.assert_allclose(out.pooled, out.patch_tokens.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.logits, out.pooled @ model.head.weight.T + model.head.bias, rtol=1e-5, atol=1e-6)
    assert (model.num_features, model.output_stride) == (256, 32)


def test_matches_timm_normfreenet(model):
    """The whole network against timm's NormFreeNet in DeepMind mode (dm_nfnet_* settings) at a tiny size,
    weights copied over; timm's erf GELU swapped for DeepMind's tanh GELU, timm's std-conv eps set to ~0 (DM's
    eps acts on N * var, timm's on var; neither binds here)."""
    c = model.config
    rng = np.random.default_rng(4)

    def randomise(path, x):  # non-trivial gains, biases and skip gains (SkipInit starts them at 0)
        if path[-1].name in ("gain", "skip_gain"):
            return jnp.asarray(rng.uniform(0.5, 1.5, x.shape), jnp.float32)
        if path[-1].name == "bias":
            return jnp.asarray(rng.normal(0, 0.1, x.shape), jnp.float32)
        return x

    ours = jax.tree_util.tree_map_with_path(randomise, model)
    cfg = nfnet.NfCfg(
        depths=c.depths, channels=c.widths, stem_type="deep_quad", stem_chs=c.widths[0] // 2,
        group_size=c.group_size, bottle_ratio=0.5, extra_conv=True, gamma_in_act=True, same_padding=True,
        skipinit=True, num_features=c.num_features, act_layer="gelu", attn_layer="se",
        attn_kwargs={"rd_ratio": 0.5}, std_conv_eps=1e-12,
    )  # fmt: skip
    theirs = nfnet.NormFreeNet(cfg, num_classes=c.num_classes).eval()
    for m in theirs.modules():
        if isinstance(m, nfnet.GammaAct):
            m.act_fn = lambda x, inplace=False: torch.nn.functional.gelu(x, approximate="tanh")
    state = {}

    def conv(name, layer):
        state.update({f"{name}.weight": layer.weight, f"{name}.bias": layer.bias})
        state[f"{name}.gain"] = layer.gain.reshape(-1, 1, 1, 1)

    for i, layer in enumerate(ours.stem):
        conv(f"stem.conv{i + 1}", layer)
    for s, blocks in enumerate(ours.stages):
        for b, blk in enumerate(blocks):
            p = f"stages.{s}.{b}"
            for theirs_name, layer in (("conv1", blk.conv0), ("conv2", blk.conv1), ("conv2b", blk.conv1b)):
                conv(f"{p}.{theirs_name}", layer)
            conv(f"{p}.conv3", blk.conv2)
            if blk.conv_shortcut is not None:
                conv(f"{p}.downsample.conv", blk.conv_shortcut)
            for theirs_name, layer in (("fc1", blk.se.fc0), ("fc2", blk.se.fc1)):
                state[f"{p}.attn_last.{theirs_name}.weight"] = layer.weight[:, :, None, None]
                state[f"{p}.attn_last.{theirs_name}.bias"] = layer.bias
            state[f"{p}.skipinit_gain"] = blk.skip_gain
    conv("final_conv", ours.final_conv)
    state.update({"head.fc.weight": ours.head.weight, "head.fc.bias": ours.head.bias})
    assert set(state) == set(theirs.state_dict())  # every timm parameter has exactly one of ours
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})

    images = np.random.default_rng(5).normal(size=(2, 64, 64, 3)).astype(np.float32)
    out = run(ours, jnp.asarray(images), intermediates=(0, 1, 2, 3))  # the compile of the test above
    with torch.no_grad():
        normalised = (images - np.float32(c.mean)) / np.float32(c.std)  # ours normalises inside, timm's does not
        x = torch.from_numpy(normalised.transpose(0, 3, 1, 2).copy())
        logits = theirs(x).numpy()
        _, stages = theirs.forward_intermediates(x, indices=[1, 2, 3])
        features = theirs.forward_head(theirs.forward_features(x), pre_logits=True).numpy()
    np.testing.assert_allclose(np.asarray(out.logits), logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out.pooled), features, rtol=1e-4, atol=1e-5)
    for ours_map, theirs_map in zip(out.intermediates[:3], stages, strict=True):
        np.testing.assert_allclose(np.asarray(ours_map), theirs_map.numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)


def test_signal_propagation_at_init():
    """The NF design's invariant, block by block (the paper's signal-propagation analysis): with an input of the
    expected variance 1 / beta^2, every residual branch outputs unit average channel variance (scaled WS, gamma,
    beta, the x2 after squeeze-excite), and a non-transition block adds alpha^2 of it to its input's variance.
    Measured per block on white N(0, 1/beta^2) noise at 32 x 32, with skip gains set to 1 (SkipInit's 0 would make
    every branch vanish). Per block because a 2x2 average-pool shortcut keeps the variance of spatially smooth
    signals only: on white noise it divides it by 4, so a whole-network plot on noise drops at each transition."""
    cfg = vitcore.get_config("nfnet-test", depths=(1, 2, 1, 1))
    model = vitcore.NFNet(cfg, key=jax.random.key(6))
    blocks = [block for stage in model.stages for block in stage]
    inputs = [
        jax.random.normal(jax.random.key(i), (4, 32, 32, b.conv0.weight.shape[1])) / b.beta
        for i, b in enumerate(blocks)
    ]

    def avg_var(h):
        return jnp.mean(jnp.var(h, axis=(0, 1, 2)))

    @eqx.filter_jit
    def measure(model, blocks, inputs, image):
        stats = []
        for block, x in zip(blocks, inputs, strict=True):
            on = eqx.tree_at(lambda b: b.skip_gain, block, jnp.ones(()))
            y, shortcut = jax.vmap(on)(x), jax.vmap(block)(x)  # skip gain 0: only the shortcut
            stats.append(jnp.stack([avg_var(x), avg_var((y - shortcut) / block.alpha), avg_var(y)]))
        for j, conv in enumerate(model.stem):  # the stem on unit-variance noise
            image = jax.vmap(conv)(image if j == 0 else nf_activation(image, cfg.activation, cfg.gamma))
        return jnp.stack(stats), avg_var(image)

    image = jax.random.normal(jax.random.key(7), (4, 64, 64, 3))
    stats, stem_var = measure(model, blocks, inputs, image)
    var_in, var_res, var_out = np.asarray(stats).T
    assert np.all((var_res > 0.8) & (var_res < 1.2)), var_res
    non_transition = [i for i, b in enumerate(blocks) if b.conv_shortcut is None]
    assert non_transition == [2]
    np.testing.assert_allclose(var_out[2], var_in[2] + cfg.alpha**2 * var_res[2], rtol=0.02)
    assert 0.8 < float(stem_var) < 1.2


def test_jit_grad_stochastic_depth_and_dropout():
    model = vitcore.create("nfnet-test", key=jax.random.key(8), num_classes=10, drop_path=0.5, dropout=0.5)
    model = jax.tree_util.tree_map_with_path(lambda p, x: jnp.ones_like(x) if p[-1].name == "skip_gain" else x, model)
    images = jax.random.normal(jax.random.key(9), (4, 32, 32, 3))

    @eqx.filter_jit
    @eqx.filter_value_and_grad
    def loss(m, x, key):
        return jnp.mean(m(x, key=key, inference=False).logits ** 2)

    value, grads = loss(model, images, jax.random.key(10))
    again, _ = loss(model, images, jax.random.key(10))
    other, _ = loss(model, images, jax.random.key(11))
    assert np.isfinite(float(value)) and float(value) == float(again) != float(other)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree.leaves(grads))
    assert float(jnp.abs(grads.stem[0].weight).sum()) > 0
    with pytest.raises(ValueError, match="key=None with inference=False"):
        model(images, inference=False)


def test_weight_decay_mask_skips_gains_and_biases(model):
    mask = model.weight_decay_mask()
    flat = jax.tree_util.tree_leaves_with_path(mask)
    decayed = {jax.tree_util.keystr(p) for p, m in flat if m}
    assert all(p.endswith(".weight") for p in decayed)
    # Every conv and linear weight is decayed: 4 stem + 4 blocks x (4 convs + 2 SE) + 4 shortcuts + final + head.
    assert len(decayed) == 4 + 4 * 6 + 4 + 1 + 1
    assert all(not m for p, m in flat if jax.tree_util.keystr(p).endswith(("gain", "bias", "skip_gain")))


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"image_size": 48}, "image_size=48"),
        ({"group_size": 64}, "group_size=64"),
        ({"activation": "tanh"}, "activation='tanh'"),
        ({"widths": (32, 64, 128)}, "widths=\\(32, 64, 128\\)"),
        ({"drop_path": 1.0}, "drop_path=1.0"),
    ],
)
def test_bad_config_raises_naming_the_field(overrides, match):
    with pytest.raises(ValueError, match=match):
        vitcore.get_config("nfnet-test", **overrides)


def test_bad_images_raise(model):
    with pytest.raises(ValueError, match="spatial size \\(48, 48\\); an NFNet needs multiples of 32"):
        model(jnp.zeros((1, 48, 48, 3)))
    with pytest.raises(ValueError, match="images has 1 channels"):
        model(jnp.zeros((1, 32, 32, 1)))


def test_intermediate_index_out_of_range_raises(model):
    with pytest.raises(ValueError, match="intermediates=\\(4,\\): 4 is not an index of 4 features"):
        model(jnp.zeros((1, 32, 32, 3)), intermediates=(4,))

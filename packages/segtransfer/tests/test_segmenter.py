"""Segmenter construction (model / timm / scratch), position-embedding interpolation, decay mask and LR scales."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest
import vitcore
from segtransfer.segmentation.optim import finetune_optimizer
from segtransfer.segmentation.segmenter import (
    create_segmenter,
    segmenter_from_scratch,
    segmenter_from_timm,
    segmenter_lr_scale,
    segmenter_weight_decay_mask,
)

HEAD = {"head_channels": 16, "norm_groups": 4}
# jitted forwards: one compile per shape instead of op-by-op dispatch (much faster on a shared 2-core machine)
_fwd = eqx.filter_jit(lambda m, x: m(x))
_tok = eqx.filter_jit(lambda e, x: e(x).patch_tokens)


def _timm_state_dict(rng, width=32, depth=2, patch=8, grid=4, classes=10):
    """A random timm-format ViT state dict (names and shapes as timm's VisionTransformer)."""
    d = width
    sd = {
        "cls_token": rng.standard_normal((1, 1, d)),
        "pos_embed": rng.standard_normal((1, 1 + grid * grid, d)),
        "patch_embed.proj.weight": rng.standard_normal((d, 3, patch, patch)) * 0.05,
        "patch_embed.proj.bias": rng.standard_normal(d) * 0.05,
        "norm.weight": 1 + 0.1 * rng.standard_normal(d),
        "norm.bias": 0.1 * rng.standard_normal(d),
        "head.weight": rng.standard_normal((classes, d)),
        "head.bias": rng.standard_normal(classes),
    }
    shapes = {
        "norm1": [(d,), (d,)],
        "attn.qkv": [(3 * d, d), (3 * d,)],
        "attn.proj": [(d, d), (d,)],
        "norm2": [(d,), (d,)],
        "mlp.fc1": [(4 * d, d), (4 * d,)],
        "mlp.fc2": [(d, 4 * d), (d,)],
    }
    for i in range(depth):
        for name, (w_shape, b_shape) in shapes.items():
            base = 1.0 if name.startswith("norm") else 0.0
            sd[f"blocks.{i}.{name}.weight"] = base + 0.1 * rng.standard_normal(w_shape)
            sd[f"blocks.{i}.{name}.bias"] = 0.1 * rng.standard_normal(b_shape)
    return {k: v.astype(np.float32) for k, v in sd.items()}


def test_same_size_keeps_encoder_outputs_and_new_size_interpolates():
    encoder = vitcore.create("vit-test", key=jr.key(0))
    images = jr.normal(jr.key(1), (2, 32, 32, 3))
    seg = create_segmenter(encoder, 5, key=jr.key(2), image_size=32, **HEAD)
    np.testing.assert_array_equal(np.asarray(_tok(seg.encoder, images)), np.asarray(_tok(encoder, images)))
    out = _fwd(seg, images)
    assert out.shape == (2, 32, 32, 5) and out.dtype == jnp.float32
    big = create_segmenter(encoder, 5, key=jr.key(2), image_size=(48, 40), **HEAD)
    assert big.image_size == (48, 40) and big.encoder.grid_size == (6, 5)
    assert _fwd(big, jnp.ones((1, 48, 40, 3))).shape == (1, 48, 40, 5)
    # the head is the same (same key); only the encoder's position embedding changed
    assert eqx.tree_equal(big.head, seg.head)


def test_from_timm_drops_classifier_and_matches_vitcore_import():
    sd = _timm_state_dict(np.random.default_rng(0))
    seg = segmenter_from_timm("vit-test", sd, 7, key=jr.key(3), **HEAD)
    ref = vitcore.from_timm("vit-test", {k: v for k, v in sd.items() if not k.startswith("head.")}, num_classes=0)
    images = jr.normal(jr.key(4), (1, 32, 32, 3))
    np.testing.assert_allclose(np.asarray(_tok(seg.encoder, images)), np.asarray(_tok(ref, images)), atol=1e-6)
    assert _fwd(seg, images).shape == (1, 32, 32, 7)
    seg48 = segmenter_from_timm("vit-test", sd, 7, key=jr.key(3), image_size=48, **HEAD)
    assert _fwd(seg48, jnp.ones((1, 48, 48, 3))).shape == (1, 48, 48, 7)


def test_scratch_and_headed_encoder_rejected():
    seg = segmenter_from_scratch("vit-test", 3, key=jr.key(0), image_size=(24, 40), head_kwargs=HEAD)
    assert _fwd(seg, jnp.ones((2, 24, 40, 3))).shape == (2, 24, 40, 3)
    with pytest.raises(ValueError, match="num_classes"):
        create_segmenter(vitcore.create("vit-test", key=jr.key(0), num_classes=4), 3, key=jr.key(1))


def test_decay_mask_and_lr_scale_act_on_the_right_leaves():
    seg = segmenter_from_scratch("vit-test", 3, key=jr.key(0), head_kwargs=HEAD)
    params = eqx.filter(seg, eqx.is_array)
    mask = segmenter_weight_decay_mask(seg)
    assert jax.tree.structure(mask) == jax.tree.structure(params)
    assert mask.head.convs[0].weight and mask.head.classifier.weight
    assert not mask.head.norms[0].weight and not mask.head.classifier.bias
    # zero gradients: one step changes exactly the decayed leaves, by -lr * wd * param * lr_scale
    lr, wd = 0.1, 0.5
    scale = segmenter_lr_scale(seg, head=3.0)
    opt = finetune_optimizer(lr, wd, decay_mask=mask, lr_scale=scale)
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = jax.jit(opt.update)(zeros, opt.init(params), params)
    for u, p, m, s in zip(*(jax.tree.leaves(t) for t in (updates, params, mask, scale)), strict=True):
        expected = -lr * wd * s * np.asarray(p) if m else np.zeros(p.shape)
        np.testing.assert_allclose(np.asarray(u), expected, rtol=1e-6, atol=1e-9)
    assert isinstance(opt, optax.GradientTransformation)


def test_an_nfnet_segments_through_its_final_feature_map():
    encoder = vitcore.create("nfnet-test", key=jr.key(0))
    seg = create_segmenter(encoder, 5, key=jr.key(2), image_size=64, **HEAD)
    assert seg.image_size == (64, 64) and seg.head.convs[0].weight.shape[1] == encoder.num_features
    images = jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.float32)
    tokens = eqx.filter_eval_shape(lambda e, x: e(x).patch_tokens, seg.encoder, images)
    assert tokens.shape == (2, 64 // encoder.output_stride, 64 // encoder.output_stride, encoder.num_features)
    assert eqx.filter_eval_shape(lambda m, x: m(x), seg, images).shape == (2, 64, 64, 5)
    # with_image_size changed only the recorded size: the weights are the encoder's
    assert all(a is b for a, b in zip(jax.tree.leaves(seg.encoder), jax.tree.leaves(encoder), strict=True))
    mask = segmenter_weight_decay_mask(seg)
    assert jax.tree.leaves(mask.encoder) == jax.tree.leaves(encoder.weight_decay_mask())

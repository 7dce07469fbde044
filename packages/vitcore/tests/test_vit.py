"""ViT forward against an independent float64 numpy re-derivation, masking, dtype policy, scan, errors."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import vitcore

_erf = np.vectorize(math.erf)
# One compiled forward per shape instead of op-by-op dispatch: keeps the suite fast on 2 cores.
run = eqx.filter_jit(lambda m, x, **kw: m(x, **kw))


def _f64(a):
    return np.asarray(a, np.float64)


def _ln(x, norm, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * _f64(norm.scale) + _f64(norm.bias)


def _lin(x, layer):
    return x @ _f64(layer.weight).T + _f64(layer.bias)


def _block(x, blk, heads, eps):
    d = x.shape[1]
    dh = d // heads
    h = _ln(x, blk.norm1, eps)
    qkv = _lin(h, blk.attn.qkv)
    q, k, v = qkv[:, :d], qkv[:, d : 2 * d], qkv[:, 2 * d :]
    out = np.zeros_like(x)
    for i in range(heads):
        s = slice(i * dh, (i + 1) * dh)
        logits = q[:, s] @ k[:, s].T / math.sqrt(dh)
        w = np.exp(logits - logits.max(-1, keepdims=True))
        out[:, s] = (w / w.sum(-1, keepdims=True)) @ v[:, s]
    x = x + _lin(out, blk.attn.proj)
    h = _lin(_ln(x, blk.norm2, eps), blk.mlp.fc1)
    h = 0.5 * h * (1 + _erf(h / math.sqrt(2)))
    return x + _lin(h, blk.mlp.fc2)


def numpy_vit(model, images, keep=None):
    """Float64 reference: explicit patch loops, per-head attention, exact GELU. Returns final-normed
    tokens."""
    c = model.config
    p = c.patch_size
    gh, gw = c.grid_size
    images = (_f64(images) - _f64(c.mean)) / _f64(c.std)  # the model normalises its [0, 1] input itself
    w, bias = _f64(model.patch_embed.weight), _f64(model.patch_embed.bias)
    result = []
    for b in range(images.shape[0]):
        patches = []
        for i in range(gh):
            for j in range(gw):
                patch = images[b, i * p : (i + 1) * p, j * p : (j + 1) * p, :]  # p p c
                patches.append(np.einsum("xyc,dcxy->d", patch, w) + bias)
        x = np.stack(patches)
        pos = _f64(model.pos_embed)
        x = x + pos[1:]
        if keep is not None:
            x = x[np.asarray(keep[b])]
        x = np.concatenate([_f64(model.cls_token) + pos[:1], x])
        for blk in model.blocks.layers:
            x = _block(x, blk, c.num_heads, c.layer_norm_eps)
        result.append(_ln(x, model.norm, c.layer_norm_eps))
    return np.stack(result)


@pytest.fixture(scope="module")
def model():
    return vitcore.create("vit-test", key=jax.random.key(1), num_classes=5, head_bias_init=-10.0)


@pytest.fixture(scope="module")
def images():
    return jax.random.normal(jax.random.key(2), (3, 32, 32, 3), jnp.float32)


def test_forward_matches_float64_numpy(model, images):
    out = run(model, images)
    ref = numpy_vit(model, images)
    np.testing.assert_allclose(out.tokens, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.pooled, ref[:, 0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.patch_tokens, ref[:, 1:].reshape(3, 4, 4, 32), rtol=1e-4, atol=1e-4)
    head = model.head
    np.testing.assert_allclose(
        out.logits, ref[:, 0] @ _f64(head.weight).T + _f64(head.bias), rtol=1e-4, atol=1e-4
    )
    assert np.all(np.asarray(head.bias) == -10.0)
    assert out.tokens.dtype == jnp.float32 and out.intermediates == ()


def test_masked_encoder_equals_full_model_on_kept_tokens(model, images):
    keep = jnp.array([[0, 5, 9, 15], [3, 2, 1, 0], [12, 7, 8, 4]], jnp.int32)
    out = run(model, images, keep_indices=keep)
    assert out.tokens.shape == (3, 5, 32) and out.patch_tokens is None
    np.testing.assert_allclose(out.tokens, numpy_vit(model, images, keep), rtol=1e-4, atol=1e-4)
    # All patches kept, in a shuffled order: attention is permutation-equivariant, so the tokens are the full
    # model's tokens in that order.
    perm = jnp.stack([jax.random.permutation(k, 16) for k in jax.random.split(jax.random.key(3), 3)])
    full = run(model, images).tokens
    shuffled = run(model, images, keep_indices=perm).tokens
    np.testing.assert_allclose(
        shuffled[:, 1:], jnp.take_along_axis(full[:, 1:], perm[..., None], 1), atol=2e-5
    )
    np.testing.assert_allclose(shuffled[:, 0], full[:, 0], atol=2e-5)


def test_intermediates(model, images):
    out = run(model, images, intermediates=(0, -1))
    x0 = np.stack(
        [_block(numpy_vit_embed(model, images[b]), model.blocks.layers[0], 2, 1e-6) for b in range(3)]
    )
    np.testing.assert_allclose(out.intermediates[0], x0, rtol=1e-4, atol=1e-4)
    # the last block's raw output, normed, is the final tokens
    normed = np.asarray(jax.vmap(jax.vmap(model.norm))(out.intermediates[1]))
    np.testing.assert_allclose(normed, out.tokens, atol=1e-5)
    with pytest.raises(ValueError, match="intermediates"):
        model(images, intermediates=(2,))


def numpy_vit_embed(model, image):
    c = model.config
    normalised = (image - jnp.asarray(c.mean)) / jnp.asarray(c.std)
    tokens = np.asarray(jax.vmap(model.patch_embed)(normalised[None])[0]).reshape(-1, c.width)
    return np.concatenate([_f64(model.cls_token), _f64(tokens)]) + _f64(model.pos_embed)


def test_mean_pool_without_class_token(images):
    m = vitcore.create("vit-test", key=jax.random.key(4), class_token=False, pool="mean", pos_embed="sincos")
    out = run(m, images)
    assert out.tokens.shape == (3, 16, 32) and out.logits is None
    np.testing.assert_allclose(out.pooled, out.tokens.mean(1), atol=1e-6)


def test_bfloat16_forward_close_to_float32(model, images):
    m16 = vitcore.create(
        "vit-test", key=jax.random.key(1), num_classes=5, head_bias_init=-10.0, compute_dtype="bfloat16"
    )
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(eqx.filter(m16, eqx.is_array)))  # params f32
    ref, out = run(model, images).tokens, run(m16, images).tokens
    assert out.dtype == jnp.float32
    rel = float(jnp.linalg.norm(out - ref) / jnp.linalg.norm(ref))
    assert 1e-5 < rel < 3e-2  # it did run in bfloat16, and stayed close
    # gradients flow through the bfloat16 compute and come back float32, like the parameters
    grads = eqx.filter_jit(eqx.filter_grad(lambda m, x: jnp.mean(m(x).logits ** 2)))(m16, images)
    assert all(g.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert float(jnp.abs(grads.blocks.layers[0].mlp.fc1.weight).sum()) > 0


def test_scan_layers_equals_unrolled(images):
    kw = dict(key=jax.random.key(5), num_classes=3, drop_path=0.2, dropout=0.1)
    flat = vitcore.create("vit-test", **kw)
    scan = vitcore.create("vit-test", scan_layers=True, **kw)
    np.testing.assert_array_equal(
        scan.blocks.layers.attn.qkv.weight[1], flat.blocks.layers[1].attn.qkv.weight
    )
    a, b = run(flat, images, intermediates=(0, 1)), run(scan, images, intermediates=(0, 1))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)
    # training mode: same keys -> same dropout / drop-path draws
    k = jax.random.key(6)
    np.testing.assert_allclose(
        run(flat, images, key=k, inference=False).logits,
        run(scan, images, key=k, inference=False).logits,
        rtol=1e-5,
        atol=1e-5,
    )


def test_jit_and_grad_in_training_mode(images):
    m = vitcore.create("vit-test", key=jax.random.key(7), num_classes=4, drop_path=0.1, dropout=0.1)

    @eqx.filter_jit
    @eqx.filter_grad
    def grads(m, x, key):
        return jnp.mean(m(x, key=key, inference=False).logits ** 2)

    g = grads(m, images, jax.random.key(8))
    leaves = jax.tree.leaves(g)
    assert len(leaves) == len(jax.tree.leaves(eqx.filter(m, eqx.is_array)))
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in leaves)
    assert float(jnp.abs(g.blocks.layers[0].attn.qkv.weight).sum()) > 0
    assert float(jnp.abs(g.pos_embed).sum()) > 0
    # dropout is live in training mode and absent at inference
    train = run(m, images, key=jax.random.key(9), inference=False).logits
    assert not np.allclose(train, run(m, images).logits)
    with pytest.raises(ValueError, match="key"):
        m(images, inference=False)


def test_weight_decay_mask(model):
    mask = vitcore.weight_decay_mask(model)
    params = eqx.filter(model, eqx.is_array)
    assert jax.tree.structure(mask) == jax.tree.structure(params)
    assert mask.patch_embed.weight and mask.head.weight and mask.blocks.layers[1].mlp.fc2.weight
    assert mask.blocks.layers[0].attn.qkv.weight
    flags_off = [
        mask.patch_embed.bias,
        mask.cls_token,
        mask.pos_embed,
        mask.norm.scale,
        mask.norm.bias,
        mask.head.bias,
        mask.blocks.layers[0].norm1.scale,
        mask.blocks.layers[0].attn.qkv.bias,
    ]
    assert not any(flags_off)
    decayed = sum(x.size for x, m in zip(jax.tree.leaves(params), jax.tree.leaves(mask), strict=True) if m)
    assert decayed == 32 * 192 + 2 * 12 * 32 * 32 + 32 * 5  # conv + 4 matmuls of 2 blocks + head


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((32, 32, 3), "images has shape"),
        ((2, 32, 32, 1), "1 channels"),
        ((2, 3, 32, 32), "channels"),
        ((2, 30, 30, 3), "not divisible by patch_size"),
        ((2, 40, 40, 3), "interpolate_pos_embed"),
    ],
)
def test_bad_images_raise_naming_the_argument(model, shape, match):
    with pytest.raises((ValueError, TypeError), match="images"):
        model(jnp.zeros(shape, jnp.float32))
    if len(shape) == 4:
        with pytest.raises(ValueError, match=match):
            model(jnp.zeros(shape, jnp.float32))


def test_bad_keep_indices(model, images):
    with pytest.raises((ValueError, TypeError), match="keep_indices"):
        model(images, keep_indices=jnp.zeros((2, 4), jnp.int32))

"""The MAE decoder: sizes, the unshuffle of mask tokens, an encoder+decoder gradient step."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import vitcore

run = eqx.filter_jit(lambda m, *args: m(*args))


def _count(tree):
    return sum(math.prod(x.shape) for x in jax.tree.leaves(tree))


def test_default_decoder_size_and_tiny_preset():
    dec = eqx.filter_eval_shape(vitcore.create_mae_decoder, 768, 196, 16, key=jax.random.key(0))
    assert dec.blocks.depth == 8 and dec.decoder_embed.weight.shape == (512, 768)
    assert dec.blocks.layers[0].attn.num_heads == 16
    w = 512
    block = 12 * w * w + 13 * w
    assert _count(dec) == (768 * w + w) + w + 8 * block + 2 * w + (w * 768 + 768)
    tiny = eqx.filter_eval_shape(
        vitcore.create_mae_decoder, 768, (14, 14), 16, key=jax.random.key(0), preset="mae-decoder-tiny"
    )
    assert tiny.blocks.depth == 1
    with pytest.raises(ValueError, match="num_patches=10"):
        vitcore.create_mae_decoder(32, 10, 8, key=jax.random.key(0))


def test_decoder_unshuffles_tokens():
    """Feeding all tokens in a shuffled order with the matching ids_restore equals feeding them in order."""
    dec = vitcore.create_mae_decoder(32, 16, 8, key=jax.random.key(0), width=32, depth=1, num_heads=2)
    tokens = jax.random.normal(jax.random.key(1), (2, 17, 32))
    perm = jnp.stack([jax.random.permutation(k, 16) for k in jax.random.split(jax.random.key(2), 2)])
    shuffled = jnp.concatenate([tokens[:, :1], jnp.take_along_axis(tokens[:, 1:], perm[..., None], 1)], 1)
    restore = jnp.argsort(perm, axis=1)
    identity = jnp.broadcast_to(jnp.arange(16), (2, 16))
    np.testing.assert_allclose(run(dec, shuffled, restore), run(dec, tokens, identity), atol=1e-5)
    assert run(dec, tokens, identity).shape == (2, 16, 8 * 8 * 3)


def test_masked_positions_get_the_mask_token():
    """With no blocks' influence removed we cannot isolate positions, so compare against a hand-built input:
    masked slots carry mask_token + their position's sin-cos row."""
    dec = vitcore.create_mae_decoder(32, 16, 8, key=jax.random.key(0), width=32, depth=1, num_heads=2)
    ids_keep, _, ids_restore = vitcore.random_masking(jax.random.key(3), 1, 16, 0.75)
    enc = jax.random.normal(jax.random.key(4), (1, 5, 32))
    x = np.asarray(dec.decoder_embed(enc[0]))
    seq = np.zeros((16, 32))
    seq[:] = np.asarray(dec.mask_token)
    seq[np.asarray(ids_keep[0])] = x[1:]
    seq = seq + vitcore.sincos_2d(32, (4, 4))
    full = jnp.asarray(np.concatenate([x[:1], seq]), jnp.float32)
    want = eqx.filter_jit(lambda d, x: d.decoder_pred(d.decoder_norm(d.blocks(x)[0]))[1:])(dec, full)
    np.testing.assert_allclose(run(dec, enc, ids_restore)[0], want, atol=1e-5)


@pytest.mark.slow
def test_mae_encoder_decoder_jit_grad():
    enc = vitcore.create(
        "vit-test", key=jax.random.key(0), pos_embed="sincos", init="xavier", scan_layers=True
    )
    dec = vitcore.create_mae_decoder(
        32, enc.grid_size, 8, key=jax.random.key(1), preset="mae-decoder-tiny", width=32, num_heads=2
    )
    images = jax.random.normal(jax.random.key(2), (2, 32, 32, 3))

    @eqx.filter_jit
    @eqx.filter_value_and_grad
    def loss(models, images, key):
        enc, dec = models
        ids_keep, mask, ids_restore = vitcore.random_masking(key, 2, 16, 0.75)
        pred = dec(enc(images, keep_indices=ids_keep).tokens, ids_restore)
        err = jnp.mean((pred - vitcore.patchify(images, 8)) ** 2, -1)
        return jnp.sum(err * mask) / jnp.sum(mask)

    value, grads = loss((enc, dec), images, jax.random.key(3))
    assert np.isfinite(float(value))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert float(jnp.abs(grads[0].blocks.layers.attn.qkv.weight).sum()) > 0
    assert float(jnp.abs(grads[1].mask_token).sum()) > 0


def test_decoder_config_for_encoder_and_validation():
    enc = vitcore.get_config("vit-b16", pos_embed="sincos", compute_dtype="bfloat16", layer_norm_eps=1e-5)
    cfg = vitcore.MAEDecoderConfig.for_encoder(enc, preset="mae-decoder-tiny", width=256)
    assert (cfg.encoder_width, cfg.grid_size, cfg.patch_size, cfg.in_channels) == (768, (14, 14), 16, 3)
    assert (cfg.width, cfg.depth, cfg.num_heads) == (256, 1, 16)  # width overridden, the rest from the preset
    assert (cfg.num_prefix_tokens, cfg.compute_dtype, cfg.layer_norm_eps) == (1, "bfloat16", 1e-5)
    dec = eqx.filter_eval_shape(vitcore.MAEDecoder, cfg, key=jax.random.key(0))
    assert dec.config == cfg and dec.grid_size == (14, 14) and dec.decoder_pred.weight.shape == (768, 256)
    with pytest.raises(ValueError, match="MAEDecoderConfig.width=30 must be divisible by num_heads=16"):
        vitcore.MAEDecoderConfig(32, (4, 4), 8, width=30)
    with pytest.raises(ValueError, match="preset='mae-huge'"):
        vitcore.MAEDecoderConfig.for_encoder(enc, preset="mae-huge")

"""Text encoders and the hashed word-piece tokenizer."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import vitcore

run = eqx.filter_jit(lambda m, *args: m(*args))


@pytest.mark.parametrize(
    ("preset", "millions", "depth", "width"), [("text-mini", 12, 4, 256), ("text-medium", 44, 8, 512)]
)
def test_text_presets_match_study_sizes(preset, millions, depth, width):
    model = eqx.filter_eval_shape(vitcore.create_text, preset, key=jax.random.key(0))
    count = sum(math.prod(x.shape) for x in jax.tree.leaves(model))
    assert abs(count / 1e6 - millions) / millions < 0.05, count
    assert (model.config.depth, model.config.width) == (depth, width)
    assert model.config.max_length >= vitcore.tokenize(["x"])[0].shape[1]


def test_tokenizer():
    ids, mask = vitcore.tokenize(["This is a photo of a shirt.", "bag", ""], max_length=12)
    assert ids.shape == mask.shape == (3, 12) and ids.dtype == np.int32 and mask.dtype == bool
    assert list(mask.sum(1)) == [10, 3, 2]  # CLS + 8 pieces ("this is a photo of a shirt .") + SEP
    assert ids[0, 0] == 1 and ids[0, 9] == 2 and np.all(ids[0, 10:] == 0)
    assert ids[0, 3] == ids[0, 6]  # "a" both times
    again, _ = vitcore.tokenize(["THIS is a photo of a shirt."], max_length=12)
    np.testing.assert_array_equal(again[0], ids[0])  # case-insensitive, deterministic
    assert np.all(ids < vitcore.VOCAB_SIZE)
    long = "a " * 40  # 80 characters; only the first 55 count
    lids, lmask = vitcore.tokenize([long])
    assert lmask.sum() == 28 + 2 and lids.shape[1] == 57
    pieces, _ = vitcore.tokenize(["photographers"], max_length=6)
    assert (pieces[0] > 3).sum() == 2  # split into 8-character word pieces
    with pytest.raises(TypeError, match="texts"):
        vitcore.tokenize("a caption")


def test_padding_does_not_change_outputs():
    model = vitcore.create_text("text-test", key=jax.random.key(0))
    ids, mask = vitcore.tokenize(["a red bag", "a shirt and a trouser"], max_length=10)
    ids, mask = jnp.asarray(ids), jnp.asarray(mask)
    out = run(model, ids, mask)
    assert out.pooled.shape == (2, 32) and out.tokens.shape == (2, 10, 32)
    garbage = jnp.where(mask, ids, 77)  # change what sits in padded slots
    out2 = run(model, garbage, mask)
    np.testing.assert_allclose(out2.pooled, out.pooled, atol=1e-6)
    short = run(model, ids[:, :7], mask[:, :7])  # first row has 5 real tokens: fewer pads, same result
    np.testing.assert_allclose(short.pooled[0], out.pooled[0], atol=1e-5)
    with pytest.raises(ValueError, match="max_length"):
        model(jnp.zeros((1, 17), jnp.int32), jnp.ones((1, 17), bool))


def test_text_jit_grad_scan_equal():
    flat = vitcore.create_text("text-test", key=jax.random.key(0), depth=2)
    scan = vitcore.create_text("text-test", key=jax.random.key(0), depth=2, scan_layers=True)
    ids, mask = map(jnp.asarray, vitcore.tokenize(["one two", "three"], max_length=8))
    np.testing.assert_allclose(run(scan, ids, mask).tokens, run(flat, ids, mask).tokens, atol=1e-5)

    @eqx.filter_jit
    @eqx.filter_grad
    def grads(m, ids, mask):
        return jnp.sum(m(ids, mask).pooled ** 2)

    g = grads(scan, ids, mask)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(g))
    assert float(jnp.abs(g.token_embed.weight).sum()) > 0
    bf16 = vitcore.create_text("text-test", key=jax.random.key(0), depth=2, compute_dtype="bfloat16")
    ref = run(flat, ids, mask).pooled
    assert float(jnp.linalg.norm(run(bf16, ids, mask).pooled - ref) / jnp.linalg.norm(ref)) < 3e-2

"""CLIP method: contract, symmetric loss vs float64 numpy, logit-scale init and clamp, host captions, learning."""

import math
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import vitcore

sys.path.insert(0, str(Path(__file__).parent))
from _method_smoke import (  # noqa: E402
    contract_run,
    fmnist_objects,
    random_batch,
    smoke_run,
    tiny_backbone,
    zero_grad_leaves,
)
from sslmethods.methods.clip import CLIP, INIT_LOG_LOGIT_SCALE  # noqa: E402

NAMES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")


def _method(**kw):
    kw = {"total_steps": 10, "embed_dim": 16, "text_encoder": "text-test", "class_names": NAMES} | kw
    return CLIP(backbone=tiny_backbone(), **kw)


@pytest.fixture(scope="module")
def run():
    return contract_run(_method(), random_batch(8), probe=lambda m, v, k: _embeddings(m, v))


def _reference_loss(img, txt, log_scale):
    """open_clip ClipLoss in float64 numpy: L2-normalise, logits = exp(clamp(s, 0, ln 100)) * cos, mean of the
    row (image->text) and column (text->image) cross-entropies."""
    img = np.asarray(img, np.float64)
    txt = np.asarray(txt, np.float64)
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    txt /= np.linalg.norm(txt, axis=1, keepdims=True)
    logits = math.exp(min(max(float(log_scale), 0.0), math.log(100.0))) * img @ txt.T

    def ce_rows(z):
        z = z - z.max(axis=1, keepdims=True)
        return -np.mean(np.diag(z) - np.log(np.exp(z).sum(axis=1)))

    return 0.5 * (ce_rows(logits) + ce_rows(logits.T))


def _embeddings(model, views):
    return model.embed_images(views["image"]), model.embed_texts(views["caption_ids"], views["caption_mask"])


def test_contract_shapes_and_gradients(run):
    views, model = run["views"], run["trainable"]
    assert views["image"].shape == (8, 32, 32, 3)
    assert views["caption_ids"].shape == views["caption_mask"].shape == (8, 16)  # text-test has 16 positions
    assert run["state"] == {} and run["new_state"] == {}
    assert zero_grad_leaves(run["grads"]) == []  # both towers, both projections and the logit scale learn
    assert _method().encoder(model) is model.image_encoder
    assert model.image_encoder.config.pos_embed == "sincos" and model.image_encoder.head is None
    assert model.image_proj.weight.shape == (16, 32) and model.text_proj.weight.shape == (16, 32)


def test_loss_is_the_symmetric_reference(run):
    model = run["trainable"]
    img, txt = run["probe"]
    expected = _reference_loss(img, txt, model.log_logit_scale)
    np.testing.assert_allclose(float(run["loss"]), expected, rtol=1e-5)
    # Symmetric: swapping the roles of the two towers' embeddings leaves the reference (and loss) unchanged.
    np.testing.assert_allclose(_reference_loss(txt, img, model.log_logit_scale), expected, rtol=1e-12)


def test_logit_scale_init_and_clamp(run):
    model, views = run["trainable"], run["views"]
    assert float(model.log_logit_scale) == pytest.approx(math.log(1 / 0.07), rel=1e-6) == INIT_LOG_LOGIT_SCALE
    np.testing.assert_allclose(float(run["aux"]["metrics"]["logit_scale"]), 1 / 0.07, rtol=1e-5)
    method = _method()

    @eqx.filter_jit
    def loss_and_grad(log_scale, model, views):
        def loss(s):
            with_scale = eqx.tree_at(lambda m: m.log_logit_scale, model, s)
            return method.loss(with_scale, {}, views, step=jnp.int32(0), key=jax.random.key(0))

        return jax.value_and_grad(loss, has_aux=True)(log_scale)

    (above, aux_above), g_above = loss_and_grad(jnp.float32(7.0), model, views)
    (at_max, _), _ = loss_and_grad(jnp.float32(math.log(100.0)), model, views)
    _, g_inside = loss_and_grad(jnp.float32(2.0), model, views)
    np.testing.assert_allclose(float(above), float(at_max), rtol=1e-6)  # clamped at ln 100
    np.testing.assert_allclose(float(aux_above["metrics"]["logit_scale"]), 100.0, rtol=1e-5)
    assert float(g_above) == 0.0 and float(g_inside) != 0.0
    img, txt = run["probe"]
    np.testing.assert_allclose(float(at_max), _reference_loss(img, txt, 7.0), rtol=1e-5)


def test_post_update_clamps_the_logit_scale_parameter_so_it_can_learn_again(run):
    # open_clip clamps the parameter after every optimizer step. Clamping only inside the loss leaves a parameter
    # that an update pushed past ln 100 with a zero gradient (test above): it would never come back.
    model, views = run["trainable"], run["views"]
    method = _method()
    post_update = eqx.filter_jit(method.post_update)
    for value, expected in ((7.0, math.log(100.0)), (-1.0, 0.0), (2.0, 2.0)):
        pushed = eqx.tree_at(lambda m: m.log_logit_scale, model, jnp.float32(value))
        clamped = post_update(pushed, step=jnp.int32(3))
        np.testing.assert_allclose(float(clamped.log_logit_scale), expected, rtol=1e-6)
        for a, b in zip(jax.tree.leaves(eqx.filter(clamped.image_encoder, eqx.is_array)),
                        jax.tree.leaves(eqx.filter(model.image_encoder, eqx.is_array)), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # nothing else changes

    @eqx.filter_jit
    def scale_grad(model):
        def loss(s):
            with_scale = eqx.tree_at(lambda m: m.log_logit_scale, model, s)
            return method.loss(with_scale, {}, views, step=jnp.int32(0), key=jax.random.key(0))[0]

        return jax.grad(loss)(model.log_logit_scale)

    pushed = eqx.tree_at(lambda m: m.log_logit_scale, model, jnp.float32(7.0))
    assert float(scale_grad(pushed)) == 0.0
    assert float(scale_grad(post_update(pushed, step=jnp.int32(3)))) != 0.0


def test_prepare_batch_tokenizes_captions_and_pseudo_captions():
    method = _method()
    batch = random_batch(3)
    with_caption = batch | {"caption": np.asarray(["A red bag.", "", "x" * 70])}
    out = method.prepare_batch(with_caption)
    assert set(out) == {"image", "caption_ids", "caption_mask"}
    ids, mask = vitcore.tokenize(
        ["A red bag.", "This is a photo of " + _listed([NAMES[v] for v in batch["labels"][1] if v >= 0]) + ".",
         "x" * 55], max_length=16)
    np.testing.assert_array_equal(out["caption_ids"], ids)
    np.testing.assert_array_equal(out["caption_mask"], mask)
    assert out["caption_ids"].dtype == np.int32 and out["caption_mask"].dtype == np.bool_
    assert all(isinstance(v, np.ndarray) for v in out.values())
    spec = method.batch_spec(3)
    assert {k: (v.shape, v.dtype) for k, v in out.items()} == {k: (v.shape, v.dtype) for k, v in spec.items()}
    only_label = {"image": batch["image"], "label": np.asarray([8, 7, 0], np.int32)}
    ids, _ = vitcore.tokenize(
        ["This is a photo of bag.", "This is a photo of sneaker.", "This is a photo of t-shirt."], max_length=16)
    np.testing.assert_array_equal(method.prepare_batch(only_label)["caption_ids"], ids)
    with pytest.raises(ValueError, match="class_names"):
        _method(class_names=None).prepare_batch(only_label)


def _listed(words):
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def test_views_need_tokenized_captions():
    batch = {"image": jnp.zeros((2, 32, 32, 3), jnp.float32)}
    with pytest.raises(ValueError, match="prepare_batch"):
        _method().views(batch, step=jnp.int32(0), key=jax.random.key(0))


def test_defaults_and_invalid_settings():
    method = CLIP(backbone=tiny_backbone(), total_steps=10)
    assert method.embed_dim == 768 and method.text_encoder == "text-mini" and method.max_caption_chars == 55
    model = eqx.filter_eval_shape(lambda k: method.init(key=k)[0], jax.random.key(0))
    assert model.text_proj.weight.shape == (768, 256) and model.text_encoder.config.depth == 4
    medium = eqx.filter_eval_shape(lambda k: _method(text_encoder="text-medium").init(key=k)[0], jax.random.key(0))
    assert medium.text_encoder.config.width == 512 and medium.text_encoder.config.depth == 8
    tiny = _method()
    mask = tiny.weight_decay_mask(tiny.init(key=jax.random.key(0))[0])
    assert mask.log_logit_scale is False and mask.image_proj.weight is True and mask.text_proj.weight is True
    with pytest.raises(ValueError, match="text_encoder"):
        _method(text_encoder="text-large")
    with pytest.raises(ValueError, match="max_caption_chars"):
        _method(max_caption_chars=80)
    with pytest.raises(TypeError, match="class_names"):
        _method(class_names=["a", "b"])


@pytest.mark.slow
def test_thirty_steps_lower_the_loss(tmp_path_factory):
    directory = fmnist_objects(tmp_path_factory)
    before, after, losses = smoke_run(_method(total_steps=30, embed_dim=32), directory)
    assert after < before, (before, after, losses)

"""MAE method: contract, loss vs a float64 numpy forward_loss, masking semantics through the method, learning."""

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
from sslmethods.methods.mae import MAE  # noqa: E402


def _method(**kw):
    kw = {"decoder": "mae-decoder-tiny", "decoder_width": 64} | kw
    kw = {"total_steps": 10} | kw
    return MAE(backbone=tiny_backbone(), **kw)


@pytest.fixture(scope="module")
def run():
    method = _method()
    return contract_run(method, random_batch(8), probe=lambda m, v, k: method.reconstruct(m, v["image"], key=k))


@pytest.fixture(scope="module")
def reconstruct(run):
    """The contract run's model and a jitted ``reconstruct`` (compiled once, for batches of 8)."""
    method = _method()
    fn = eqx.filter_jit(lambda m, x, k: method.reconstruct(m, x, key=k))
    return method, run["trainable"], fn


def _reference_loss(pred, images, mask, patch, mean, std):
    """facebookresearch/mae forward_loss in float64 numpy on the *normalised* image (MAE's loader applies
    transforms.Normalize with ImageNet's mean/std before the model): norm_pix target (unbiased var), masked mean."""
    x = (np.asarray(images, np.float64) - np.asarray(mean)) / np.asarray(std)
    b, h, w, c = x.shape
    target = x.reshape(b, h // patch, patch, w // patch, patch, c).transpose(0, 1, 3, 2, 4, 5)
    target = target.reshape(b, (h // patch) * (w // patch), patch * patch * c)
    mean = target.mean(-1, keepdims=True)
    var = target.var(-1, ddof=1, keepdims=True)
    target = (target - mean) / np.sqrt(var + 1e-6)
    per_patch = ((np.asarray(pred, np.float64) - target) ** 2).mean(-1)
    m = np.asarray(mask, np.float64)
    return float((per_patch * m).sum() / m.sum())


def test_contract_shapes_and_gradients(run):
    assert run["views"]["image"].shape == (8, 32, 32, 3) and set(run["views"]) == {"image"}
    assert run["state"] == {} and run["new_state"] == {}
    assert zero_grad_leaves(run["grads"]) == []  # encoder and decoder (mask token included) all learn
    np.testing.assert_allclose(float(run["aux"]["metrics"]["masked_fraction"]), 0.75)
    method = _method()
    assert method.encoder(run["trainable"]) is run["trainable"].encoder
    assert run["trainable"].encoder.config.pos_embed == "sincos" and run["trainable"].encoder.head is None


def test_loss_matches_float64_reference(run):
    rec = run["probe"]  # reconstruct() with the key the loss drew its mask from
    assert run["trainable"].encoder.config.mean == (0.485, 0.456, 0.406)  # ImageNet's, as MAE's loader
    expected = _reference_loss(rec.pred, run["views"]["image"], rec.mask, 8, (0.485, 0.456, 0.406),
                               (0.229, 0.224, 0.225))
    np.testing.assert_allclose(float(run["loss"]), expected, rtol=1e-5)


def test_pixel_target_is_the_backbones_normalised_image():
    """The target uses the encoder's own normalisation (whatever its mean/std), before per-patch norm."""
    mean, std = (0.1, 0.5, 0.9), (0.5, 0.25, 2.0)
    method = MAE(backbone=tiny_backbone(mean=mean, std=std), total_steps=10, decoder="mae-decoder-tiny",
                 decoder_width=64, norm_pix_loss=False)
    model = eqx.filter_eval_shape(lambda k: method.init(key=k)[0], jax.random.key(0))
    model = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), model)  # the target does not depend on weights
    images = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3))
    rec = method.reconstruct(model, jnp.asarray(images, jnp.float32), key=jax.random.key(1))
    x = (images - np.asarray(mean)) / np.asarray(std)
    target = x.reshape(2, 4, 8, 4, 8, 3).transpose(0, 1, 3, 2, 4, 5).reshape(2, 16, 192)
    np.testing.assert_allclose(np.asarray(rec.target), target, rtol=1e-5, atol=1e-6)


def test_loss_ignores_visible_patch_predictions(reconstruct):
    method, model, fn = reconstruct
    images = jnp.asarray(random_batch(8)["image"])
    rec = fn(model, images, jax.random.key(3))
    grad_pred, grad_target = jax.grad(method.reconstruction_loss, argnums=(0, 1))(rec.pred, rec.target, rec.mask)
    visible = np.asarray(rec.mask) == 0
    assert np.all(np.asarray(grad_pred)[visible] == 0.0)
    assert np.all(np.any(np.asarray(grad_pred)[~visible] != 0.0, axis=-1))
    assert np.all(np.asarray(grad_target) == 0.0)  # the pixel target is a stop-gradient
    garbage = jnp.where(jnp.asarray(visible)[..., None], 1e3, rec.pred)
    np.testing.assert_allclose(
        float(method.reconstruction_loss(garbage, rec.target, rec.mask)),
        float(method.reconstruction_loss(rec.pred, rec.target, rec.mask)),
        rtol=1e-6,
    )


def test_encoder_sees_only_kept_patches(reconstruct):
    method, model, fn = reconstruct
    images = jnp.asarray(random_batch(8)["image"])
    key = jax.random.key(5)
    rec = fn(model, images, key)
    assert rec.num_tokens == 1 + method.num_visible == 1 + 4
    # Per-pixel patch membership: pixels of masked patches may change without changing any prediction.
    patch_mask = np.asarray(rec.mask).reshape(8, 4, 4)
    pixel_mask = np.kron(patch_mask, np.ones((8, 8)))[..., None] > 0
    noise = np.random.default_rng(1).uniform(0, 1, images.shape).astype(np.float32)
    edited = jnp.where(jnp.asarray(pixel_mask), jnp.asarray(noise), images)
    np.testing.assert_allclose(np.asarray(fn(model, edited, key).pred), np.asarray(rec.pred), atol=1e-6)
    # ... while changing a visible patch changes the predictions.
    visible_edit = jnp.where(jnp.asarray(~pixel_mask), jnp.asarray(noise), images)
    assert not np.allclose(np.asarray(fn(model, visible_edit, key).pred), np.asarray(rec.pred), atol=1e-4)
    # The kept ids are exactly the unmasked patches.
    for row, keep in zip(np.asarray(rec.mask), np.asarray(rec.ids_keep), strict=True):
        assert sorted(keep.tolist()) == sorted(np.flatnonzero(row == 0).tolist())


@pytest.mark.parametrize("ratio, kept", [(0.55, 7), (0.65, 5), (0.75, 4), (0.85, 2)])
def test_mask_ratio_respected(ratio, kept):
    method = _method(mask_ratio=ratio)
    assert method.num_visible == kept == int(16 * (1 - ratio))
    model = eqx.filter_eval_shape(lambda k: method.init(key=k)[0], jax.random.key(0))
    images = jax.ShapeDtypeStruct((3, 32, 32, 3), jnp.float32)
    rec = eqx.filter_eval_shape(lambda m, x: method.reconstruct(m, x, key=jax.random.key(0)), model, images)
    assert rec.ids_keep.shape == (3, kept) and rec.pred.shape == (3, 16, 8 * 8 * 3)
    assert rec.num_tokens == 1 + kept  # the class token plus the kept patches, nothing else
    ids_keep, mask, _ = vitcore.random_masking(jax.random.key(0), 3, 16, ratio)
    np.testing.assert_array_equal(np.asarray(mask).sum(1), np.full(3, 16 - kept))


def test_decoder_presets_and_mask():
    default = MAE(backbone=tiny_backbone(), total_steps=10)
    model = eqx.filter_eval_shape(lambda k: default.init(key=k)[0], jax.random.key(0))
    assert default.mask_ratio == 0.75 and default.norm_pix_loss
    assert model.decoder.blocks.depth == 8 and model.decoder.mask_token.shape == (512,)
    tiny = eqx.filter_eval_shape(lambda k: _method(decoder_width=None).init(key=k)[0], jax.random.key(0))
    assert tiny.decoder.blocks.depth == 1
    mask = _method().weight_decay_mask(_method().init(key=jax.random.key(0))[0])
    assert mask.decoder.decoder_pred.weight is True and mask.decoder.decoder_pred.bias is False
    assert mask.decoder.mask_token is True and mask.encoder.cls_token is True  # MAE decays them (timm's rule)


def test_invalid_settings_raise():
    with pytest.raises(ValueError, match="mask_ratio"):
        _method(mask_ratio=1.0)
    with pytest.raises(ValueError, match="mask_ratio"):
        _method(mask_ratio=0.97)  # keeps int(16 * 0.03) = 0 patches
    with pytest.raises(ValueError, match="decoder"):
        _method(decoder="mae-decoder-huge")
    with pytest.raises(ValueError, match="decoder_depth"):
        _method(decoder_depth=0)


@pytest.mark.slow
def test_thirty_steps_lower_the_loss(tmp_path_factory):
    directory = fmnist_objects(tmp_path_factory)
    before, after, losses = smoke_run(_method(total_steps=30), directory)
    assert after < 0.85 * before, (before, after, losses)

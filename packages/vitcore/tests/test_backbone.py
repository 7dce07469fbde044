"""The backbone face every family shares (`AbstractBackbone`), checked over one tiny preset per family, mostly
abstractly (`eqx.filter_eval_shape`: shapes without compiling)."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest
import vitcore

TINY = {"vit-test": vitcore.ViT, "nfnet-test": vitcore.NFNet}


@pytest.fixture(scope="module", params=sorted(TINY))
def preset(request):
    return request.param


def test_every_family_has_a_tiny_preset_and_the_registry_dispatches_by_config_class():
    families = {f.config_class: f.model_class for f in vitcore.BACKBONE_FAMILIES}
    assert {type(vitcore.PRESETS[p]) for p in TINY} == set(families)
    assert len({f.name for f in vitcore.BACKBONE_FAMILIES}) == len(vitcore.BACKBONE_FAMILIES)
    assert set(vitcore.VIT_PRESETS) | set(vitcore.NFNET_PRESETS) == set(vitcore.PRESETS)
    for name, cls in TINY.items():
        model = eqx.filter_eval_shape(vitcore.create, name, key=jax.random.key(0))
        assert type(model) is cls and isinstance(model, vitcore.AbstractBackbone)
    with pytest.raises(TypeError, match="expected one of \\['ViTConfig', 'NFNetConfig'\\]"):
        vitcore.build(vitcore.TEXT_PRESETS["text-test"], key=jax.random.key(0))
    with pytest.raises(TypeError, match="unknown NFNetConfig override\\(s\\) \\['patch_size'\\]"):
        vitcore.get_config("nfnet-test", patch_size=16)


def test_outputs_feature_maps_and_feature_info_agree(preset):
    model = eqx.filter_eval_shape(vitcore.create, preset, key=jax.random.key(0), num_classes=7)
    size = vitcore.image_hw(model.config.image_size)
    images = jax.ShapeDtypeStruct((2, *size, 3), jnp.float32)
    info = model.feature_info
    assert all(isinstance(f, vitcore.FeatureInfo) for f in info)
    out = eqx.filter_eval_shape(lambda m, x: m(x), model, images)
    s, d = model.output_stride, model.num_features
    assert out.logits.shape == (2, 7) and out.pooled.shape == (2, d)
    assert out.patch_tokens.shape == (2, size[0] // s, size[1] // s, d)
    maps = eqx.filter_eval_shape(lambda m, x: m.feature_maps(x, range(len(info))), model, images)
    assert [m.shape for m in maps] == [(2, size[0] // f.stride, size[1] // f.stride, f.channels) for f in info]
    last = eqx.filter_eval_shape(lambda m, x: m.intermediates(x, [-1]), model, images)
    assert len(last) == 1
    # Static: readable from the config alone, so flopmeter / necks need no model.
    assert model.config.feature_info == info


def test_without_head_keeps_every_other_weight(preset):
    model = vitcore.create(preset, key=jax.random.key(1), num_classes=5)
    headless = model.without_head()
    assert type(headless) is type(model) and headless.head is None
    assert headless.config == dataclasses.replace(model.config, num_classes=0)
    kept = jax.tree.leaves(eqx.tree_at(lambda m: m.head, model, None))
    assert all(a is b for a, b in zip(jax.tree.leaves(headless), kept, strict=True))
    assert headless.without_head() is headless


def test_weight_decay_mask_is_the_backbones_declaration(preset):
    model = vitcore.create(preset, key=jax.random.key(0), num_classes=3)
    mask = model.weight_decay_mask()
    assert jax.tree.structure(mask) == jax.tree.structure(eqx.filter(model, eqx.is_array))
    assert mask == vitcore.weight_decay_mask(model)
    assert mask.head.weight and not mask.head.bias


def test_bfloat16_compute_returns_float32_outputs(preset):
    """Traced abstractly under strict dtype promotion: no implicit mixing, outputs float32 as the contract says."""
    model = eqx.filter_eval_shape(
        vitcore.create, preset, key=jax.random.key(0), num_classes=4, compute_dtype="bfloat16"
    )
    size = vitcore.image_hw(model.config.image_size)
    out = eqx.filter_eval_shape(
        lambda m, x: m(x, intermediates=[0]), model, jax.ShapeDtypeStruct((2, *size, 3), jnp.float32)
    )
    assert {x.dtype for x in (out.logits, out.pooled, out.patch_tokens, *out.intermediates)} == {jnp.dtype("float32")}


def test_with_image_size_keeps_the_weights_and_records_the_size(preset):
    model = vitcore.create(preset, key=jax.random.key(2))
    assert model.with_image_size(model.config.image_size) is model
    size = 2 * vitcore.image_hw(model.config.image_size)[0]
    bigger = model.with_image_size(size)
    assert type(bigger) is type(model) and vitcore.image_hw(bigger.config.image_size) == (size, size)
    assert bigger.config == dataclasses.replace(model.config, image_size=size)
    out = eqx.filter_eval_shape(lambda m, x: m(x), bigger, jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32))
    s = bigger.output_stride
    assert out.patch_tokens.shape == (1, size // s, size // s, bigger.num_features)
    # Every array the model holds is kept, except a ViT's learned position table, which is resampled.
    resampled = {id(model.pos_embed)} if isinstance(model, vitcore.ViT) else set()  # vit-test: learned table
    kept = [a for a in jax.tree.leaves(model) if id(a) not in resampled]
    assert all(any(a is b for b in jax.tree.leaves(bigger)) for a in kept)

"""Input normalisation inside every backbone: the config's mean/std (ImageNet's by default), float64 references,
config checks, and old encoder.json files (no mean/std) loading as mean 0 / std 1."""

import dataclasses
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
import vitcore

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # torchvision's, as the study (A.3)


def _with_config(model, **changes):
    """The same weights under a config with `changes` (mean/std hold no arrays, so the leaves carry over)."""
    config = dataclasses.replace(model.config, **changes)
    structure = jax.tree.structure(eqx.filter_eval_shape(type(model), config, key=jr.key(0)))
    return jax.tree.unflatten(structure, jax.tree.leaves(model))


@pytest.mark.parametrize("preset, size", [("vit-test", 32), ("nfnet-test", 64)])
def test_backbone_normalises_its_input_with_the_configs_mean_and_std(preset, size):
    model = vitcore.create(preset, key=jr.key(0), num_classes=3, mean=(0.2, 0.5, 0.7), std=(0.1, 0.3, 2.0))
    pixels = np.asarray(jr.uniform(jr.key(1), (2, size, size, 3)), np.float64)
    normalised = (pixels - [0.2, 0.5, 0.7]) / [0.1, 0.3, 2.0]  # float64 reference
    np.testing.assert_allclose(np.asarray(model.normalise(jnp.asarray(pixels, jnp.float32))), normalised,
                               rtol=1e-6, atol=1e-6)
    identity = _with_config(model, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    ours = model(jnp.asarray(pixels, jnp.float32)).logits
    expected = identity(jnp.asarray(normalised, jnp.float32)).logits
    np.testing.assert_allclose(np.asarray(ours), np.asarray(expected), rtol=1e-5, atol=1e-5)
    assert not np.allclose(np.asarray(ours), np.asarray(identity(jnp.asarray(pixels, jnp.float32)).logits))


@pytest.mark.parametrize("preset", ["vit-test", "nfnet-test", "vit-b16", "nfnet-f0"])
def test_default_is_imagenet(preset):
    config = vitcore.get_config(preset)
    assert (config.mean, config.std) == IMAGENET


def test_normalisation_runs_in_float32_before_the_bfloat16_cast():
    model = vitcore.create("vit-test", key=jr.key(0), compute_dtype="bfloat16")
    pixels = jnp.full((1, 32, 32, 3), 0.5, jnp.bfloat16)
    out = model.normalise(pixels)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(out[0, 0, 0]), (0.5 - np.asarray(IMAGENET[0])) / IMAGENET[1], rtol=1e-6)


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"std": (0.2, 0.0, 0.2)}, r"ViTConfig\.std=\(0\.2, 0\.0, 0\.2\); expected every value > 0"),
        ({"mean": (0.5, 0.5)}, r"ViTConfig\.mean=\(0\.5, 0\.5\); expected a tuple of numbers, one per input "
                               r"channel \(in_channels=3\)"),
        ({"in_channels": 1}, r"ViTConfig\.mean=\(0\.485, 0\.456, 0\.406\); expected .* \(in_channels=1\)"),
    ],
)
def test_bad_mean_or_std_names_the_field(overrides, match):
    with pytest.raises(ValueError, match=match):
        vitcore.get_config("vit-test", **overrides)
    assert vitcore.get_config("vit-test", in_channels=1, mean=(0.5,), std=(0.25,)).mean == (0.5,)


def test_nfnet_config_checks_mean_and_std():
    with pytest.raises(ValueError, match=r"NFNetConfig\.std=\(1\.0, -1\.0, 1\.0\); expected every value > 0"):
        vitcore.get_config("nfnet-test", std=(1.0, -1.0, 1.0))


def test_encoder_json_records_mean_std_and_an_old_file_without_them_loads_as_mean_0_std_1(tmp_path):
    model = vitcore.create("vit-test", key=jr.key(2), mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6))
    eqx.tree_serialise_leaves(tmp_path / "encoder.eqx", model)
    info = json.loads(json.dumps({"class": "vitcore.ViT", "config": dataclasses.asdict(model.config)}))
    assert (info["config"]["mean"], info["config"]["std"]) == ([0.1, 0.2, 0.3], [0.4, 0.5, 0.6])
    (tmp_path / "encoder.json").write_text(json.dumps(info))
    assert vitcore.load_pretrained(tmp_path).config == model.config  # lists back to tuples

    # A run directory written before backbones normalised: its encoder.json has no mean/std, and the encoder
    # was trained on raw [0, 1] pixels, so it must load as mean 0 / std 1 (not today's ImageNet default).
    old = {"class": "vitcore.ViT", "config": {
        "image_size": 32, "patch_size": 8, "width": 32, "depth": 2, "num_heads": 2, "in_channels": 3,
        "mlp_ratio": 4.0, "class_token": True, "pool": "cls", "pos_embed": "learned", "qkv_bias": True,
        "drop_path": 0.0, "dropout": 0.0, "num_classes": 0, "head_bias_init": 0.0, "init": "trunc_normal",
        "compute_dtype": "float32", "layer_norm_eps": 1e-06, "scan_layers": False}}
    (tmp_path / "encoder.json").write_text(json.dumps(old, indent=2))
    loaded = vitcore.load_pretrained(tmp_path)
    assert (loaded.config.mean, loaded.config.std) == ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    pixels = jr.uniform(jr.key(3), (2, 32, 32, 3))
    raw = _with_config(model, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # the same weights fed raw pixels
    np.testing.assert_array_equal(np.asarray(loaded(pixels).pooled), np.asarray(raw(pixels).pooled))

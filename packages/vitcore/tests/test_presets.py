"""Preset registry, parameter counts (abstract, no allocation) and config validation."""

import math

import equinox as eqx
import jax
import pytest
import vitcore

# timm 1.0 `timm.create_model(name, num_classes=1000)` parameter counts (checked with timm 1.0.31).
TIMM_COUNTS_1000 = {
    "vit-ti16": 5_717_416,
    "vit-s16": 22_050_664,
    "vit-b16": 86_567_656,
    "vit-l16": 304_326_632,
    "vit-h14": 632_045_800,
}


def _abstract_count(preset, **kw):
    model = eqx.filter_eval_shape(vitcore.create, preset, key=jax.random.key(0), **kw)
    leaves = jax.tree.leaves(model)
    assert all(isinstance(x, jax.ShapeDtypeStruct) for x in leaves)  # nothing was allocated
    return sum(math.prod(x.shape) for x in leaves)


@pytest.mark.parametrize("preset", sorted(TIMM_COUNTS_1000))
def test_param_count_with_1000_classes_matches_timm(preset):
    assert _abstract_count(preset, num_classes=1000) == TIMM_COUNTS_1000[preset]


def test_param_counts_of_the_issue():
    """The issue's five numbers. Four are with a 1000-way head; timm's `vit_huge_patch14_224` has no head by
    default (num_classes=0), which is where 630,764,800 comes from."""
    assert [_abstract_count(p, num_classes=1000) for p in ("vit-ti16", "vit-s16", "vit-b16", "vit-l16")] == [
        5_717_416,
        22_050_664,
        86_567_656,
        304_326_632,
    ]
    assert _abstract_count("vit-h14", num_classes=0) == 630_764_800


def test_param_count_closed_form_and_scan_layers():
    d, depth, n, k = 768, 12, 197, 1000
    block = 2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d + (4 * d * d + 4 * d) + (4 * d * d + d)
    expected = (3 * 16 * 16 * d + d) + d + n * d + depth * block + 2 * d + (d * k + k)
    assert _abstract_count("vit-b16", num_classes=k) == expected
    assert _abstract_count("vit-b16", num_classes=k, scan_layers=True) == expected


def test_sincos_model_has_no_position_parameters():
    learned = _abstract_count("vit-test")
    fixed = _abstract_count("vit-test", pos_embed="sincos")
    assert learned - fixed == 17 * 32


def test_presets_are_configs_and_overrides_apply():
    assert set(TIMM_COUNTS_1000) | {"vit-test", "vit-demo"} <= set(vitcore.PRESETS)
    cfg = vitcore.get_config("vit-b16", drop_path=0.1, compute_dtype="bfloat16")
    assert isinstance(cfg, vitcore.ViTConfig)
    assert (cfg.width, cfg.depth, cfg.num_heads, cfg.drop_path, cfg.compute_dtype) == (
        768,
        12,
        12,
        0.1,
        "bfloat16",
    )
    assert cfg.grid_size == (14, 14) and cfg.num_prefix_tokens == 1
    t = vitcore.PRESETS["vit-test"]
    assert (t.image_size, t.patch_size, t.width, t.depth, t.num_heads) == (32, 8, 32, 2, 2)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"image_size": 30}, "image_size=30"),
        ({"num_heads": 3}, "num_heads=3"),
        ({"pool": "max"}, "pool='max'"),
        ({"pos_embed": "rope"}, "pos_embed='rope'"),
        ({"compute_dtype": "float16"}, "compute_dtype='float16'"),
        ({"class_token": False}, "pool='cls'"),
        ({"drop_path": 1.5}, "drop_path=1.5"),
    ],
)
def test_bad_config_raises_naming_the_field(overrides, match):
    with pytest.raises(ValueError, match=match):
        vitcore.get_config("vit-test", **overrides)


def test_unknown_preset_and_override():
    with pytest.raises(ValueError, match="vit-x99"):
        vitcore.get_config("vit-x99")
    with pytest.raises(TypeError, match="hidden_size"):
        vitcore.get_config("vit-test", hidden_size=3)

"""Dotted overrides (``optim.lr=1e-3 method.mask_ratio=0.65``): typed against the dataclasses, errors name the
field and the valid ones, and the result builds the method the overrides describe."""

import dataclasses

import pytest
from sslmethods import CLIP, MAE
from sslmethods.pretrain import overrides, recipes
from sslmethods.pretrain.optim import OptimConfig


def test_values_are_typed_by_the_fields_annotations():
    ov = overrides.parse_overrides(["optim.lr=1", "optim.clip_norm=none", "method.mask_ratio=0.65",
                                    "method.decoder=mae-decoder-tiny", "method.decoder_depth=2",
                                    "model.drop_path=0.1", "method.norm_pix_loss=false"], MAE)
    assert ov.optim == {"lr": 1.0, "clip_norm": None} and isinstance(ov.optim["lr"], float)
    assert ov.method == {"mask_ratio": 0.65, "decoder": "mae-decoder-tiny", "decoder_depth": 2,
                         "norm_pix_loss": False}
    assert ov.model == {"drop_path": 0.1}
    # the canonical text does not depend on the order or spelling of the same overrides
    again = overrides.parse_overrides(["method.norm_pix_loss=False", "model.drop_path=.1", "method.decoder_depth=2",
                                       "method.decoder=mae-decoder-tiny", "method.mask_ratio=0.65",
                                       "optim.clip_norm=None", "optim.lr=1.0"], MAE)
    assert again.assignments() == ov.assignments()
    assert overrides.parse_overrides(["method.class_names=('a','b')"], CLIP).method == {"class_names": ("a", "b")}


def test_overrides_reach_the_built_method_and_optimizer():
    ov = overrides.parse_overrides(["optim.lr=0.005", "method.mask_ratio=0.55", "model.drop_path=0.2"], MAE)
    method, optim = recipes.build_method("mae", "vit-test", preset="demo", total_steps=10, **ov.build_kwargs())
    assert (method.mask_ratio, optim.lr, method.backbone.drop_path) == (0.55, 0.005, 0.2)
    _, default = recipes.build_method("mae", "vit-test", preset="demo", total_steps=10)
    assert dataclasses.replace(default, lr=0.005) == optim  # nothing else changed


@pytest.mark.parametrize(("items", "message"), [
    (["method.foo=1"], "method.foo: not a field of MAE; valid fields: decoder, decoder_depth, decoder_width, "
                       "mask_ratio, norm_pix_loss"),
    (["method.total_steps=5"], "method.total_steps: not a field of MAE"),  # the run sets it
    (["optim.learning_rate=1"], "optim.learning_rate: not a field of OptimConfig; valid fields: agc, agc_eps, b1, b2"),
    (["model.widht=8"], "model.widht: not a field of ViTConfig"),
    (["optim.lr=abc"], "optim.lr='abc': expected float"),
    (["method.mask_ratio=true"], "method.mask_ratio='true': expected float"),
    (["method.decoder_depth=1.5"], "method.decoder_depth='1.5': expected int | None"),
    (["x.lr=1"], "'x.lr=1': unknown section 'x'; expected one of method, optim, model"),
    (["lr=1"], "'lr=1': expected section.field=value"),
    (["optim.lr=1", "optim.lr=2"], "optim.lr is given twice"),
])
def test_errors_name_the_field_and_the_valid_ones(items, message):
    with pytest.raises(ValueError) as error:
        overrides.parse_overrides(items, MAE)
    assert message in str(error.value)


def test_check_fields_types_any_dataclass_config():
    assert overrides.check_fields(OptimConfig, {"lr": 1, "b1": 0.5}, where="optim") == {"lr": 1.0, "b1": 0.5}
    with pytest.raises(ValueError, match=r"optim.warmup_steps=0.5: expected int \| None"):
        overrides.check_fields(OptimConfig, {"warmup_steps": 0.5}, where="optim")
    with pytest.raises(ValueError,
                       match=r"mine.nope: not a field of OptimConfig; valid fields: agc, agc_eps, b1, b2"):
        overrides.check_fields(OptimConfig, {"nope": 1}, where="mine")

"""recipes.build_method: a registered name, an import path or a class; overrides checked against the method's
fields before anything is built; presets for built-ins and the fallback for a user's method."""

import sys
import textwrap

import pytest
import sslmethods
from sslmethods.pretrain import recipes
from sslmethods.pretrain.presets import get_preset


@pytest.fixture
def user_method(tmp_path, monkeypatch):
    """`user_mod:Tiny`, a user's SimCLR variant with one extra field, importable from a temporary folder."""
    (tmp_path / "user_mod.py").write_text(textwrap.dedent('''
        from typing import ClassVar
        import equinox as eqx
        import sslmethods

        class Tiny(sslmethods.SimCLR):
            name: ClassVar[str] = "tiny"
            extra: int = eqx.field(static=True, default=3)
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "user_mod:Tiny"
    sys.modules.pop("user_mod", None)


def test_built_in_by_name_gets_its_preset_and_overrides_win():
    method, optim = recipes.build_method("dino", "vit-test", preset="demo", total_steps=7, image_size=16,
                                         method_overrides={"out_dim": 32}, optim_overrides={"lr": 5e-4})
    overrides, demo = get_preset("dino", "demo")
    assert isinstance(method, sslmethods.DINO) and method.total_steps == 7 and method.image_size == 16
    assert method.out_dim == 32 and method.num_local_crops == overrides["num_local_crops"]
    assert optim.lr == 5e-4 and optim.b2 == demo.b2


def test_a_user_method_by_import_path(user_method):
    method, optim = recipes.build_method(user_method, "vit-test", preset="paper:i1k", total_steps=5,
                                         method_overrides={"extra": 7, "proj_dim": 8})
    assert type(method).__name__ == "Tiny" and method.extra == 7 and method.proj_dim == 8
    assert method.temperature == 0.1  # its own default: SimCLR's preset overrides are not applied to it
    assert optim == get_preset("simclr", "paper:i1k")[1]
    cls = type(method)
    assert recipes.build_method(cls, "vit-test", preset="demo", total_steps=5)[0].extra == 3


def test_unknown_override_fields_are_named_with_the_valid_ones(user_method):
    with pytest.raises(ValueError, match=r"method_overrides has 'mask_ratio', not field\(s\) of SimCLR; expected "
                                         r"some of temperature, proj_hidden_dim"):
        recipes.build_method("simclr", "vit-test", preset="demo", total_steps=5,
                             method_overrides={"mask_ratio": 0.5})
    with pytest.raises(ValueError, match=r"method_overrides has 'total_steps', not field\(s\) of Tiny"):
        recipes.build_method(user_method, "vit-test", preset="demo", total_steps=5,
                             method_overrides={"total_steps": 9})
    with pytest.raises(ValueError, match=r"optim_overrides has 'learning_rate'; expected some of optimizer, lr"):
        recipes.build_method("mae", "vit-test", preset="demo", total_steps=5, optim_overrides={"learning_rate": 1})
    with pytest.raises(ValueError, match="model='vit-x'; expected one of"):
        recipes.build_method("mae", "vit-x", preset="demo", total_steps=5)
    with pytest.raises(ValueError, match="method='user_mod:Nope': module 'user_mod' has no attribute 'Nope'"):
        recipes.build_method("user_mod:Nope", "vit-test", preset="demo", total_steps=5)

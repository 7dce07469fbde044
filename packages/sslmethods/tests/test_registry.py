"""The registry: the six study methods under their names (docs/design.md section 2), read-only, and `get_method`
resolving import paths of user methods with errors that name the path and what was expected."""

import sys
import textwrap

import pytest
import sslmethods
import vitcore
from sslmethods.methods.method import AbstractMethod

TINY = vitcore.get_config("vit-test", width=32, depth=1, num_heads=2)


def test_registry_maps_the_design_names_to_their_concrete_classes():
    assert list(sslmethods.METHODS) == ["supervised", "clip", "simclr", "byol", "dino", "mae"]
    expected = {"supervised": sslmethods.Supervised, "clip": sslmethods.CLIP, "simclr": sslmethods.SimCLR,
                "byol": sslmethods.BYOL, "dino": sslmethods.DINO, "mae": sslmethods.MAE}
    for name, cls in sslmethods.METHODS.items():
        assert cls is expected[name]
        assert sslmethods.get_method(name) is cls
        # The import path of a built-in resolves to the registered class itself.
        assert sslmethods.get_method(f"{cls.__module__}:{cls.__name__}") is cls
        method = cls(backbone=TINY, total_steps=10)  # concrete: every abstract hook is implemented
        assert method.name == name and isinstance(method, AbstractMethod)


def test_registry_is_read_only_and_unknown_names_list_the_valid_ones():
    with pytest.raises(TypeError):
        sslmethods.METHODS["x"] = object  # type: ignore[index]
    with pytest.raises(ValueError, match="method='moco'; expected a registered name "
                                         r"\(supervised, clip, simclr, byol, dino, mae\) or 'package.module"):
        sslmethods.get_method("moco")


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """An importable module `user_methods` with a concrete method, an abstract one and a non-method."""
    (tmp_path / "user_methods.py").write_text(textwrap.dedent('''
        from typing import ClassVar
        import sslmethods

        class Half(sslmethods.AbstractMethod):   # no loss, views, ...: abstract
            name: ClassVar[str] = "half"

        class NotAMethod:
            pass
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "user_methods"
    sys.modules.pop("user_methods", None)


def test_import_path_errors_name_the_path_and_what_was_expected(user_module):
    with pytest.raises(ValueError, match=r"method='no_such_pkg.mod:X': cannot import module 'no_such_pkg.mod' "
                                         r"\(ModuleNotFoundError"):
        sslmethods.get_method("no_such_pkg.mod:X")
    with pytest.raises(ValueError, match="module 'user_methods' has no attribute 'Missing'"):
        sslmethods.get_method("user_methods:Missing")
    with pytest.raises(TypeError, match="method='user_methods:NotAMethod' is <class 'user_methods.NotAMethod'>, "
                                        "not an AbstractMethod subclass"):
        sslmethods.get_method("user_methods:NotAMethod")
    with pytest.raises(TypeError, match=r"Half is abstract \(it does not define analytic_macs, encoder, init, "
                                        r"loss, views\)"):
        sslmethods.get_method("user_methods:Half")
    with pytest.raises(ValueError, match="not a well-formed import path"):
        sslmethods.get_method("user_methods:")

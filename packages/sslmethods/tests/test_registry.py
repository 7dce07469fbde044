import pytest
import sslmethods
from sslmethods.method import AbstractMethod


def test_registry_holds_the_six_study_methods():
    assert set(sslmethods.METHODS) == {"supervised", "clip", "simclr", "byol", "dino", "mae"}
    for name, cls in sslmethods.METHODS.items():
        assert issubclass(cls, AbstractMethod)
        assert cls.name == name


def test_registry_is_read_only_and_errors_list_names():
    with pytest.raises(TypeError):
        sslmethods.METHODS["x"] = object  # type: ignore[index]
    with pytest.raises(ValueError, match="supervised, clip, simclr, byol, dino, mae"):
        sslmethods.get_method("moco")

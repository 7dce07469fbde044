"""``METHODS``: the registry of the study's pre-training methods, and ``get_method``: a method class from a name.

``get_method`` takes a registered name (``"dino"``) or the import path of any ``AbstractMethod`` subclass,
``"package.module:ClassName"`` (the module must be importable, e.g. on ``PYTHONPATH``), so a user's method works
wherever a built-in does (``recipes.build_method``, ``tools/pretrain.py --method``, ``tools/profile_flops.py
--method``) without being registered. The library's mapping is read-only, so no import can change what a name
means.
"""

from __future__ import annotations

import importlib
from types import MappingProxyType

import flopcli

from .byol import BYOL
from .clip import CLIP
from .dino import DINO
from .mae import MAE
from .method import AbstractMethod
from .simclr import SimCLR
from .supervised import Supervised

__all__ = ["METHODS", "get_method"]

METHODS: MappingProxyType[str, type[AbstractMethod]] = MappingProxyType({
    "supervised": Supervised, "clip": CLIP, "simclr": SimCLR, "byol": BYOL, "dino": DINO, "mae": MAE,
})

_EXPECTED = "expected a registered name ({names}) or 'package.module:ClassName' naming an AbstractMethod subclass"


def get_method(name: str) -> type[AbstractMethod]:
    """The method class registered as ``name``, or the class at the import path ``"package.module:ClassName"``.

    Raises ValueError for an unknown name or a path that does not import (naming it and what was expected; a
    module that raises anything else at import is a `flopcli.UserCodeError`, a ValueError naming the path and the
    exception), and TypeError when the path names something that is not a concrete ``AbstractMethod`` subclass.
    """
    expected = _EXPECTED.format(names=", ".join(METHODS))
    if not isinstance(name, str):
        raise TypeError(f"method={name!r}; {expected}")
    if ":" not in name:
        if name not in METHODS:
            raise ValueError(f"method={name!r}; {expected}")
        return METHODS[name]
    module_name, _, attribute = name.partition(":")
    if not module_name or not attribute.isidentifier():
        raise ValueError(f"method={name!r} is not a well-formed import path; {expected}")
    try:
        with flopcli.user_code(f"method={name!r}: importing module {module_name!r}"):
            module = importlib.import_module(module_name)
    except flopcli.UserCodeError as error:
        if not isinstance(error.__cause__, ImportError):
            raise
        raise ValueError(
            f"method={name!r}: cannot import module {module_name!r} ({type(error.__cause__).__name__}: "
            f"{error.__cause__}); is it on PYTHONPATH? {expected}"
        ) from error.__cause__
    try:
        cls = getattr(module, attribute)
    except AttributeError:
        raise ValueError(
            f"method={name!r}: module {module_name!r} has no attribute {attribute!r}; {expected}"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, AbstractMethod)):
        raise TypeError(f"method={name!r} is {cls!r}, not an AbstractMethod subclass; {expected}")
    # Equinox keeps abstract class attributes (``name``) apart from abstract methods.
    missing = sorted({*cls.__abstractmethods__, *cls.__abstractclassvars__})
    if missing:
        raise TypeError(f"method={name!r}: {cls.__name__} is abstract (it does not define {', '.join(missing)})")
    return cls

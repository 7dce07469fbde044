"""``METHODS``: the registry of pre-training methods, keyed by name.

A user's own method (any final ``AbstractMethod`` subclass) is used by passing the class itself where a name is
accepted, or by building a new mapping, e.g. ``{**METHODS, "simclr_pred": SimCLRWithPredictor}``; the library's
mapping is read-only so that no import can change what a name means.
"""

from __future__ import annotations

from types import MappingProxyType

from .byol import BYOL
from .clip import CLIP
from .dino import DINO
from .mae import MAE
from .method import AbstractMethod
from .simclr import SimCLR
from .supervised import Supervised

METHODS: MappingProxyType[str, type[AbstractMethod]] = MappingProxyType({
    cls.name: cls for cls in (Supervised, CLIP, SimCLR, BYOL, DINO, MAE)
})


def get_method(name: str) -> type[AbstractMethod]:
    """The method class registered as ``name``; ValueError listing the valid names otherwise."""
    if name not in METHODS:
        raise ValueError(f"method={name!r}: expected one of {', '.join(METHODS)}")
    return METHODS[name]

"""`create` / `build`: one factory for every backbone family, dispatched by config class (a typed registry).

model = vitcore.create("vit-b16", key=key, num_classes=1000)   # -> vitcore.ViT
model = vitcore.create("nfnet-f0", key=key, num_classes=1000)  # -> vitcore.NFNet
"""

from typing import NamedTuple

from jaxtyping import PRNGKeyArray

from .backbone import AbstractBackbone
from .config import ViTConfig
from .nfnet import NFNet
from .nfnet_config import NFNetConfig
from .presets import get_config
from .vit import ViT


class BackboneFamily(NamedTuple):
    """A backbone family: its config class, its module class, and the name that identifies it in files
    (the ``"class"`` of an ``encoder.json``)."""

    name: str
    config_class: type
    model_class: type[AbstractBackbone]


BACKBONE_FAMILIES: tuple[BackboneFamily, ...] = (
    BackboneFamily("vitcore.ViT", ViTConfig, ViT),
    BackboneFamily("vitcore.NFNet", NFNetConfig, NFNet),
)


def family_of(config: object) -> BackboneFamily:
    """The family whose config class `config` is an instance of; TypeError naming the valid classes."""
    for family in BACKBONE_FAMILIES:
        if type(config) is family.config_class:
            return family
    valid = [f.config_class.__name__ for f in BACKBONE_FAMILIES]
    raise TypeError(f"config={config!r} is a {type(config).__name__}; expected one of {valid}")


def build(config: object, *, key: PRNGKeyArray) -> AbstractBackbone:
    """A freshly initialised backbone of `config`'s family (`config` is an instance of a `config_class` of
    `BACKBONE_FAMILIES`: a `ViTConfig` or an `NFNetConfig`); TypeError naming the valid classes otherwise."""
    return family_of(config).model_class(config, key=key)


def create(preset: str, *, key: PRNGKeyArray, num_classes: int = 0, **overrides) -> AbstractBackbone:
    """A freshly initialised backbone from a preset name (`vitcore.PRESETS`) plus config overrides."""
    return build(get_config(preset, num_classes=num_classes, **overrides), key=key)

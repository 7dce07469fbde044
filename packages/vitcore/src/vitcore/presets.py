"""Preset registry: name -> frozen backbone config (configs, not models or weights).

`PRESETS` holds every family: the ViTs below (`VIT_PRESETS`, `ViTConfig`) and the NFNets of
`nfnet_presets.py` (`NFNET_PRESETS`, `NFNetConfig`). `vitcore.create` builds any of them.

| name      | image | patch | width | depth | heads | params (num_classes=1000) |
|-----------|-------|-------|-------|-------|-------|---------------------------|
| vit-ti16  | 224   | 16    | 192   | 12    | 3     | 5,717,416                 |
| vit-s16   | 224   | 16    | 384   | 12    | 6     | 22,050,664                |
| vit-b16   | 224   | 16    | 768   | 12    | 12    | 86,567,656                |
| vit-l16   | 224   | 16    | 1024  | 24    | 16    | 304,326,632               |
| vit-h14   | 224   | 14    | 1280  | 32    | 16    | 630,764,800               |
| vit-test  | 32    | 8     | 32    | 2     | 2     | unit tests                |
| vit-demo  | 64    | 8     | 128   | 6     | 4     | CPU demo runs             |
"""

import dataclasses

from .config import ViTConfig
from .nfnet_config import NFNetConfig
from .nfnet_presets import NFNET_PRESETS

VIT_PRESETS: dict[str, ViTConfig] = {
    "vit-ti16": ViTConfig(image_size=224, patch_size=16, width=192, depth=12, num_heads=3),
    "vit-s16": ViTConfig(image_size=224, patch_size=16, width=384, depth=12, num_heads=6),
    "vit-b16": ViTConfig(image_size=224, patch_size=16, width=768, depth=12, num_heads=12),
    "vit-l16": ViTConfig(image_size=224, patch_size=16, width=1024, depth=24, num_heads=16),
    "vit-h14": ViTConfig(image_size=224, patch_size=14, width=1280, depth=32, num_heads=16),
    "vit-test": ViTConfig(image_size=32, patch_size=8, width=32, depth=2, num_heads=2),
    "vit-demo": ViTConfig(image_size=64, patch_size=8, width=128, depth=6, num_heads=4),
}

PRESETS: dict[str, ViTConfig | NFNetConfig] = {**VIT_PRESETS, **NFNET_PRESETS}


def get_config(preset: str, **overrides) -> ViTConfig | NFNetConfig:
    """The preset's config with `overrides` (any field of its config class) applied; unknown names raise."""
    if preset not in PRESETS:
        raise ValueError(f"preset={preset!r} is not a vitcore preset; expected one of {sorted(PRESETS)}")
    base = PRESETS[preset]
    fields = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(
            f"unknown {type(base).__name__} override(s) {unknown} for preset={preset!r}; valid fields are "
            f"{sorted(fields)}"
        )
    return dataclasses.replace(base, **overrides)

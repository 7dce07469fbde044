"""The backbones a method trains: any vitcore family's config, the study's flavours of it, sizes and costs.

A method's ``backbone`` is the frozen config of any vitcore backbone family (`vitcore.BACKBONE_FAMILIES`: a
``ViTConfig`` or an ``NFNetConfig``); the method builds it with `vitcore.build` and reads its sizes from the
backbone face (``num_features``, ``feature_info``), so supervised, CLIP, SimCLR and BYOL train an NFNet unchanged.
Methods that work on patch tokens (MAE's masking, DINO's multi-crop position embedding) declare it
(``AbstractMethod.vit_only``) and refuse other families at configuration time (`check_method_backbone`).

Koppula et al. 2022 (A.3) train SimCLR, BYOL, CLIP and MAE on MAE's ViT (fixed 2-D sin-cos position embedding,
xavier init), DINO on DINO's ViT and supervised on the standard ViT: `mae_flavour` gives the first for a ViT and
leaves other families as they are (they have no position embedding). The MAC counts wrap ``flopmeter``'s closed
forms for a config (FLOPs are twice the MACs), so each method's ``analytic_macs`` is a few lines::

    cfg = mae_flavour(vitcore.get_config("vit-b16"))
    per_image = train_macs(cfg)                          # forward + backward of one 224x224 image
    train_macs(vitcore.get_config("nfnet-f0"), num_classes=1000)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flopmeter
import vitcore

__all__ = ["BackboneConfig", "check_backbone", "check_method_backbone", "classifier_config", "forward_macs",
           "mae_flavour", "mae_vit_config", "square_image_size", "train_macs"]

BackboneConfig = vitcore.ViTConfig | vitcore.NFNetConfig
"""The config of any vitcore backbone family (what ``AbstractMethod.backbone`` holds)."""

# Per family: the fields MAE's flavour sets (a ViT's position embedding and init; an NFNet has neither) and the
# classifier fields of the supervised recipe it has (the -10 head bias is a ViT field; it is inert under softmax).
_MAE_FLAVOUR: dict[type, dict[str, Any]] = {vitcore.ViTConfig: {"pos_embed": "sincos", "init": "xavier"},
                                            vitcore.NFNetConfig: {}}
_CLASSIFIER_FIELDS: dict[type, tuple[str, ...]] = {vitcore.ViTConfig: ("drop_path", "head_bias_init"),
                                                   vitcore.NFNetConfig: ("drop_path",)}


def check_backbone(backbone: Any) -> None:
    """TypeError unless ``backbone`` is the config of a vitcore backbone family (``vitcore.get_config``)."""
    if type(backbone) not in _MAE_FLAVOUR:
        valid = ", ".join(f"vitcore.{cls.__name__}" for cls in _MAE_FLAVOUR)
        raise TypeError(f"backbone={backbone!r}; expected a backbone config ({valid}: vitcore.get_config)")


def _family(backbone: BackboneConfig) -> str:
    check_backbone(backbone)
    return vitcore.family_of(backbone).name.removeprefix("vitcore.")


def check_method_backbone(method: str, vit_only: str | None, backbone: BackboneConfig, *,
                          model: str | None = None) -> None:
    """ValueError naming ``method`` and the backbone when the method needs a ViT (``vit_only``: why) and
    ``backbone`` (preset ``model``, when known) is of another family."""
    check_backbone(backbone)
    if vit_only is None or type(backbone) is vitcore.ViTConfig:
        return
    name = f"model={model!r} is" if model else f"backbone is {type(backbone).__name__}(...),"
    raise ValueError(f"method {method!r} requires a ViT backbone ({vit_only}); {name} an {_family(backbone)}: use "
                     "a vit-* preset")


def mae_flavour(backbone: BackboneConfig) -> BackboneConfig:
    """The study's encoder for SimCLR, BYOL, CLIP and MAE, without a classifier head: for a ViT, MAE's flavour
    (sin-cos position embedding, xavier init); other families (NFNet) have no such fields and stay as given."""
    check_backbone(backbone)
    return dataclasses.replace(backbone, num_classes=0, **_MAE_FLAVOUR[type(backbone)])


def mae_vit_config(backbone: vitcore.ViTConfig) -> vitcore.ViTConfig:
    """MAE's ViT flavour of the ViT ``backbone`` (`mae_flavour` for ViTs only)."""
    if type(backbone) is not vitcore.ViTConfig:
        raise TypeError(f"backbone={backbone!r}; expected a vitcore.ViTConfig (MAE's flavour is a ViT's)")
    return mae_flavour(backbone)


def classifier_config(backbone: BackboneConfig, *, num_classes: int, drop_path: float,
                      head_bias_init: float) -> BackboneConfig:
    """``backbone`` with a ``num_classes`` head and the supervised recipe's fields its family has (a ViT:
    ``drop_path`` and ``head_bias_init``; an NFNet: ``drop_path``, its stochastic-depth rate)."""
    check_backbone(backbone)
    values = {"drop_path": drop_path, "head_bias_init": head_bias_init}
    return dataclasses.replace(backbone, num_classes=num_classes,
                               **{k: values[k] for k in _CLASSIFIER_FIELDS[type(backbone)]})


def square_image_size(backbone: BackboneConfig) -> int:
    """The backbone's input size as one int; the view recipes crop square images, so it must be square."""
    check_backbone(backbone)
    height, width = vitcore.image_hw(backbone.image_size)
    if height != width:
        raise ValueError(f"backbone.image_size={backbone.image_size!r}; expected a square image size")
    return height


def _vit_kwargs(backbone: vitcore.ViTConfig, image_size: int | None) -> dict[str, object]:
    if type(backbone) is not vitcore.ViTConfig:
        raise TypeError(f"backbone={backbone!r}; expected a vitcore.ViTConfig")
    return {"image_size": backbone.image_size if image_size is None else image_size,
            "patch_size": backbone.patch_size, "width": backbone.width, "depth": backbone.depth,
            "mlp_ratio": backbone.mlp_ratio, "in_channels": backbone.in_channels,
            "num_prefix_tokens": 1 if backbone.class_token else 0}


def _nfnet_kwargs(backbone: vitcore.NFNetConfig, image_size: int | None) -> dict[str, object]:
    return {"image_size": backbone.image_size if image_size is None else image_size, "widths": backbone.widths,
            "depths": backbone.depths, "stem_widths": backbone.stem_widths, "group_size": backbone.group_size,
            "bottleneck_ratio": backbone.bottleneck_ratio, "se_ratio": backbone.se_ratio,
            "final_conv_mult": backbone.final_conv_mult, "in_channels": backbone.in_channels}


# Per family: its closed forms (forward, forward + backward) and the config fields they take.
_COSTS = {vitcore.ViTConfig: (_vit_kwargs, flopmeter.vit_forward_macs, flopmeter.vit_train_macs),
          vitcore.NFNetConfig: (_nfnet_kwargs, flopmeter.nfnet_forward_macs, flopmeter.nfnet_train_macs)}


def forward_macs(backbone: BackboneConfig, *, image_size: int | None = None, num_classes: int = 0) -> int:
    """MACs of one image through any backbone family (ViT: ``flopmeter.vit_forward_macs``; NFNet:
    ``flopmeter.nfnet_forward_macs``, every conv tap counted), with a ``num_classes`` head."""
    check_backbone(backbone)
    kwargs, forward, _ = _COSTS[type(backbone)]
    return forward(**kwargs(backbone, image_size), num_classes=num_classes)


def train_macs(backbone: BackboneConfig, *, image_size: int | None = None, num_classes: int = 0) -> int:
    """MACs of forward + backward of one image through any backbone family (3 forwards minus the first layer's
    input gradient)."""
    check_backbone(backbone)
    kwargs, _, train = _COSTS[type(backbone)]
    return train(**kwargs(backbone, image_size), num_classes=num_classes)

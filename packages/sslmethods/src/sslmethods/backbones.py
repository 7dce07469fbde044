"""The study's backbone flavours of a ``vitcore.ViTConfig``, its input size and its closed-form costs.

Koppula et al. 2022 (A.3) train SimCLR, BYOL, CLIP and MAE on MAE's ViT (fixed 2-D sin-cos position embedding,
xavier init), DINO on DINO's ViT and supervised on the standard ViT; every method derives its encoder from the
``backbone`` config it is given with these functions. The MAC counts wrap ``flopmeter``'s closed forms
(matrix products only; FLOPs are twice the MACs) for a config, so each method's ``analytic_macs`` is a few lines::

    cfg = mae_vit_config(vitcore.get_config("vit-b16"))
    per_image = vit_train_macs(cfg)          # forward + backward of one 224x224 image
"""

from __future__ import annotations

import dataclasses

import flopmeter
import vitcore

__all__ = ["mae_vit_config", "square_image_size", "vit_forward_macs", "vit_train_macs"]


def _check(backbone: vitcore.ViTConfig) -> None:
    if not isinstance(backbone, vitcore.ViTConfig):
        raise TypeError(f"backbone={backbone!r}; expected a vitcore.ViTConfig (vitcore.get_config)")


def mae_vit_config(backbone: vitcore.ViTConfig) -> vitcore.ViTConfig:
    """MAE's ViT flavour of ``backbone`` (sin-cos position embedding, xavier init, no head): the study's encoder
    for SimCLR, BYOL, CLIP and MAE."""
    _check(backbone)
    return dataclasses.replace(backbone, pos_embed="sincos", init="xavier", num_classes=0)


def square_image_size(backbone: vitcore.ViTConfig) -> int:
    """The backbone's input size as one int; the view recipes crop square images, so it must be square."""
    _check(backbone)
    height, width = vitcore.image_hw(backbone.image_size)
    if height != width:
        raise ValueError(f"backbone.image_size={backbone.image_size!r}; expected a square image size")
    return height


def _vit_kwargs(backbone: vitcore.ViTConfig, image_size: int | None) -> dict[str, object]:
    _check(backbone)
    return {"image_size": backbone.image_size if image_size is None else image_size,
            "patch_size": backbone.patch_size, "width": backbone.width, "depth": backbone.depth,
            "mlp_ratio": backbone.mlp_ratio, "in_channels": backbone.in_channels,
            "num_prefix_tokens": 1 if backbone.class_token else 0}


def vit_forward_macs(
    backbone: vitcore.ViTConfig, *, image_size: int | None = None, num_classes: int = 0,
    kept_patches: int | None = None,
) -> int:
    """MACs of one image through the ViT ``backbone`` (``flopmeter.vit_forward_macs``): at ``image_size``
    (default: the config's; other sizes are DINO's local crops), with a ``num_classes`` head, on
    ``kept_patches`` patch tokens only (MAE's encoder)."""
    return flopmeter.vit_forward_macs(**_vit_kwargs(backbone, image_size), num_classes=num_classes,
                                      kept_patches=kept_patches)


def vit_train_macs(backbone: vitcore.ViTConfig, *, image_size: int | None = None, num_classes: int = 0) -> int:
    """MACs of forward + backward of one image (``flopmeter.vit_train_macs``: 3 forwards minus the patch
    embedding's input gradient)."""
    return flopmeter.vit_train_macs(**_vit_kwargs(backbone, image_size), num_classes=num_classes)

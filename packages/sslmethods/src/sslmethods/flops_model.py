"""Closed-form FLOPs of one training step of each method (backbones and text encoder; heads left out).

A cross-check for the measured (compiled) step, built from ``flopmeter``'s per-image ViT counts. Per image,
with F = ViT forward MACs and T = forward + backward MACs (3F minus the patch embedding's input gradient):

    supervised  T(S)                      simclr  2 T(S)
    byol        2 T(S) + 2 F(S)  (target)  dino    2 T(S) + n_local T(s_local) + 2 F(S)  (teacher, globals only)
    mae         3 (encoder + decoder) - patch embedding     clip    T(S) + 3 text(L)

FLOPs = 2 x MACs x batch. Projection/prediction heads (< 1% at ViT-B/16), the optimizer and elementwise work are
not counted, so the measured step is a little larger.
"""

from __future__ import annotations

from typing import Any


def _vit_kwargs(cfg: Any, image_size: int) -> dict[str, Any]:
    return {"image_size": image_size, "patch_size": cfg.patch_size, "width": cfg.width, "depth": cfg.depth,
            "mlp_ratio": cfg.mlp_ratio, "in_channels": cfg.in_channels,
            "num_prefix_tokens": 1 if cfg.class_token else 0}


def analytic_step_flops(
    method: str,
    backbone: Any,
    *,
    batch: int,
    num_local_crops: int = 10,
    local_size: int | None = None,
    num_classes: int = 0,
    mask_ratio: float = 0.75,
    decoder_width: int = 512,
    decoder_depth: int = 8,
    text_width: int = 256,
    text_depth: int = 4,
    text_mlp_ratio: float = 4.0,
    context_length: int = 57,
) -> dict[str, float]:
    """``{"flops", "macs"}`` of one step at ``batch`` images, plus ``decoder_share`` for MAE (the decoder's
    fraction of the step's MACs: the same for forward and backward, since both scale 3x)."""
    import flopmeter

    size = backbone.image_size if isinstance(backbone.image_size, int) else backbone.image_size[0]
    kw = _vit_kwargs(backbone, size)
    forward, train = flopmeter.vit_forward_macs(**kw), flopmeter.vit_train_macs(**kw)
    extra: dict[str, float] = {}
    if method == "supervised":
        per_image = flopmeter.vit_train_macs(**kw, num_classes=num_classes)
    elif method == "simclr":
        per_image = 2 * train
    elif method == "byol":
        per_image = 2 * train + 2 * forward
    elif method == "dino":
        if local_size is None:
            local_size = backbone.patch_size * max(1, round(96 * size / 224 / backbone.patch_size))
        local = flopmeter.vit_train_macs(**_vit_kwargs(backbone, local_size))
        per_image = 2 * train + num_local_crops * local + 2 * forward
    elif method == "mae":
        parts = flopmeter.mae_forward_macs(image_size=size, patch_size=backbone.patch_size, width=backbone.width,
                                           depth=backbone.depth, mask_ratio=mask_ratio, decoder_width=decoder_width,
                                           decoder_depth=decoder_depth, mlp_ratio=backbone.mlp_ratio,
                                           in_channels=backbone.in_channels)
        embed = flopmeter.patch_embed_macs(patches=flopmeter.num_patches(image_size=size,
                                                                         patch_size=backbone.patch_size),
                                           patch_size=backbone.patch_size, width=backbone.width,
                                           in_channels=backbone.in_channels)
        per_image = 3 * parts["total"] - embed
        extra["decoder_share"] = 3 * parts["decoder"] / per_image
    elif method == "clip":
        text = flopmeter.text_encoder_macs(seq_len=context_length, width=text_width, depth=text_depth,
                                           mlp_ratio=text_mlp_ratio)
        per_image = train + 3 * text
    else:
        raise ValueError(f"method={method!r}; expected one of supervised, clip, simclr, byol, dino, mae")
    macs = float(per_image) * batch
    return {"macs": macs, "flops": flopmeter.macs_to_flops(macs), **extra}

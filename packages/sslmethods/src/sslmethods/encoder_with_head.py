"""``EncoderWithHead``: a ViT backbone with a head on its pooled output, the network of SimCLR, BYOL's target and
DINO's student and teacher (and of most joint-embedding methods)::

    net = EncoderWithHead(vitcore.ViT(cfg, key=k_vit), simclr_projector(cfg.width, key=k_head))
    z = net(images, key=k_drop)              # [b, e]: head(backbone(images).pooled)
"""

from __future__ import annotations

import equinox as eqx
import vitcore
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = ["EncoderWithHead"]


class EncoderWithHead(eqx.Module):
    """``head(backbone(images).pooled)``. ``head`` is any module mapping ``[b d]`` to ``[b e]`` (``MLPHead``,
    ``DINOHead``, ...). Images may come at the backbone's resolution or at any other multiple of the patch size
    (DINO's local crops): the position embedding is then resampled for them (``vitcore.interpolate_pos_embed``,
    inside the traced forward pass, so gradients reach the full-size table)."""

    backbone: vitcore.ViT
    head: eqx.Module

    def __call__(
        self, images: Float[Array, "b h w c"], *, key: PRNGKeyArray | None = None, inference: bool = False
    ) -> Float[Array, "b e"]:
        backbone = self.backbone
        if images.shape[1:3] != vitcore.image_hw(backbone.config.image_size):
            backbone = vitcore.interpolate_pos_embed(backbone, (images.shape[1], images.shape[2]))
        return self.head(backbone(images, key=key, inference=inference).pooled)

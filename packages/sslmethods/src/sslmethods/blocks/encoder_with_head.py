"""``EncoderWithHead``: a backbone with a head on its pooled output, the network of SimCLR, BYOL's target and
DINO's student and teacher (and of most joint-embedding methods)::

    net = EncoderWithHead(vitcore.build(cfg, key=k_vit), simclr_projector(cfg.num_features, key=k_head))
    z = net(images, key=k_drop)              # [b, e]: head(backbone(images).pooled)
"""

from __future__ import annotations

import equinox as eqx
import vitcore
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = ["EncoderWithHead"]


class EncoderWithHead(eqx.Module):
    """``head(backbone(images).pooled)``. ``head`` is any module mapping ``[b d]`` to ``[b e]`` (``MLPHead``,
    ``DINOHead``, ...). Images may come at the backbone's resolution or at any other size it accepts (DINO's local
    crops): the backbone is then adapted to them (``with_image_size``: a ViT's position embedding is resampled
    inside the traced forward pass, so gradients reach the full-size table)."""

    backbone: vitcore.AbstractBackbone
    head: eqx.Module

    def __call__(
        self, images: Float[Array, "b h w c"], *, key: PRNGKeyArray | None = None, inference: bool = False
    ) -> Float[Array, "b e"]:
        backbone = self.backbone.with_image_size((images.shape[1], images.shape[2]))
        return self.head(backbone(images, key=key, inference=inference).pooled)

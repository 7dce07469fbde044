"""A user's own pre-training method, outside the library, used by import path (``_custom_method:TinySimSiam``).

SimSiam (Chen & He 2021) at toy size from sslmethods' public parts: two SimCLR views, a projector and a
predictor; each view's prediction regresses the other view's stop-gradient projection (BYOL's regression loss,
2 - 2cos, symmetrised). (packages/sslmethods/examples has no SimSiam on main yet; this stands in for it.)
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import vitcore
from jaxtyping import Array, Float, Int, PRNGKeyArray
from sslmethods.augment import make_views, simclr_views
from sslmethods.heads import MLPHead, byol_mlp
from sslmethods.losses import byol_loss
from sslmethods.method import AbstractMethod, Batch
from sslmethods.simclr import mae_vit_config, square_image_size


class TinySimSiamModel(eqx.Module):
    backbone: vitcore.ViT
    projector: MLPHead
    predictor: MLPHead


class TinySimSiam(AbstractMethod):
    name: ClassVar[str] = "tiny_simsiam"
    backbone: vitcore.ViTConfig = eqx.field(static=True)
    total_steps: int = eqx.field(static=True)
    proj_dim: int = eqx.field(static=True, default=16)

    def init(self, *, key: PRNGKeyArray) -> tuple[TinySimSiamModel, dict]:
        k_vit, k_proj, k_pred = jax.random.split(key, 3)
        projector = byol_mlp(self.backbone.width, key=k_proj, hidden_dim=self.proj_dim, out_dim=self.proj_dim)
        predictor = byol_mlp(self.proj_dim, key=k_pred, hidden_dim=self.proj_dim, out_dim=self.proj_dim)
        return TinySimSiamModel(vitcore.ViT(mae_vit_config(self.backbone), key=k_vit), projector, predictor), {}

    def views(self, batch: Batch, *, step: Int[Array, ""], key: PRNGKeyArray) -> Batch:
        view1, view2 = make_views(batch["image"], simclr_views(square_image_size(self.backbone)), key=key)
        return {"view1": view1, "view2": view2}

    def loss(self, trainable: TinySimSiamModel, state: Any, views: Batch, *, step: Int[Array, ""],
             key: PRNGKeyArray) -> tuple[Float[Array, ""], dict[str, Any]]:
        k1, k2 = jax.random.split(key)
        z1 = trainable.projector(trainable.backbone(views["view1"], key=k1, inference=False).pooled)
        z2 = trainable.projector(trainable.backbone(views["view2"], key=k2, inference=False).pooled)
        loss = 0.5 * (byol_loss(trainable.predictor(z1), z2) + byol_loss(trainable.predictor(z2), z1))
        return loss, {"metrics": {}}

    def update_state(self, trainable: TinySimSiamModel, state: Any, aux: dict[str, Any], *,
                     step: Int[Array, ""]) -> Any:
        return state

    def encoder(self, trainable: TinySimSiamModel) -> vitcore.ViT:
        return trainable.backbone

    def weight_decay_mask(self, trainable: TinySimSiamModel) -> Any:
        return vitcore.weight_decay_mask(trainable)

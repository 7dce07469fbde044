"""SimSiam (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021) as a user's own method,
composed from sslmethods' public building blocks without touching the library. Use it by import path wherever a
built-in name is accepted (the module must be importable, here via PYTHONPATH)::

    PYTHONPATH=packages/sslmethods/examples python tools/profile_flops.py --method simsiam:SimSiam \\
        --model vit-b16 --batch 4096 --json
    method, optim = sslmethods.pretrain.recipes.build_method("simsiam:SimSiam", "vit-test", preset="demo",
                                                             total_steps=50)
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import sslmethods
import vitcore


class SimSiamModel(eqx.Module):
    network: sslmethods.EncoderWithHead  # the ViT and the projector
    predictor: sslmethods.MLPHead


class SimSiam(sslmethods.AbstractMethod):
    """Two views; each view's prediction regresses the other view's stop-gradient projection (negative cosine,
    symmetrised). Projector: 3 layers of ``proj_dim`` (2048); predictor: ``proj_dim -> pred_hidden_dim (512) ->
    proj_dim``; both with batch statistics, as SimSiam's heads (BatchNorm). Encoder: MAE's ViT of ``backbone``.
    Everything not written here comes from the protocol's defaults (state, weight decay, batch, host side)."""

    name: ClassVar[str] = "simsiam"
    proj_dim: int = eqx.field(static=True, default=2048)
    pred_hidden_dim: int = eqx.field(static=True, default=512)

    def init(self, *, key: jax.Array) -> tuple[SimSiamModel, dict[str, Any]]:
        k_vit, k_proj, k_pred = jax.random.split(key, 3)
        cfg = sslmethods.mae_vit_config(self.backbone)
        projector = sslmethods.MLPHead(cfg.width, (self.proj_dim,) * 2, self.proj_dim, key=k_proj, norm="batch")
        predictor = sslmethods.byol_mlp(self.proj_dim, key=k_pred, hidden_dim=self.pred_hidden_dim,
                                        out_dim=self.proj_dim, norm="batch")
        return SimSiamModel(sslmethods.EncoderWithHead(vitcore.ViT(cfg, key=k_vit), projector), predictor), {}

    def views(self, batch: dict, *, step: jax.Array, key: jax.Array) -> dict:
        view1, view2 = sslmethods.make_views(batch["image"], sslmethods.simclr_views(self.image_size), key=key)
        return {"view1": view1, "view2": view2}

    def loss(self, trainable: SimSiamModel, state: Any, views: dict, *, step: jax.Array, key: jax.Array
             ) -> tuple[jax.Array, dict[str, Any]]:
        k1, k2 = jax.random.split(key)
        z1, z2 = trainable.network(views["view1"], key=k1), trainable.network(views["view2"], key=k2)
        p1, p2 = trainable.predictor(z1), trainable.predictor(z2)
        loss = 0.5 * (sslmethods.negative_cosine(p1, z2) + sslmethods.negative_cosine(p2, z1))
        return loss, {"metrics": {"projection_cosine": sslmethods.cosine_similarity(z1, z2).mean()}}

    def encoder(self, trainable: SimSiamModel) -> vitcore.ViT:
        return trainable.network.backbone

    def analytic_macs(self, batch_size: int) -> float:
        # Forward + backward of the encoder on both views; the heads are left out, as for the built-ins.
        return float(2 * batch_size * sslmethods.train_macs(sslmethods.mae_vit_config(self.backbone)))

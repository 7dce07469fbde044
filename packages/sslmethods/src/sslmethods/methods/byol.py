"""BYOL (Grill et al. 2020): an online network predicts an EMA target network's projection of the other view.

Canonical code: deepmind-research ``byol/byol_experiment.py`` (loss, target update), ``utils/networks.py`` (MLP
heads), ``utils/augmentations.py`` (asymmetric views), ``utils/schedules.py::target_ema``. Trainable: backbone +
projector + predictor. State: ``{"target": EncoderWithHead}``, an EMA copy of backbone + projector that only
``update_state`` changes (``tau_k = 1 - (1 - tau_base)(cos(pi k / K) + 1) / 2``)::

    method = BYOL(backbone=vitcore.get_config("vit-b16"), total_steps=250_000)
    trainable, state = method.init(key=key)
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import vitcore
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..blocks.augment import byol_views, make_views
from ..blocks.backbones import BackboneConfig, forward_macs, mae_flavour, train_macs
from ..blocks.ema import ema_update
from ..blocks.encoder_with_head import EncoderWithHead
from ..blocks.heads import HEAD_NORMS, MLPHead, byol_mlp
from ..blocks.losses import byol_loss, cosine_similarity
from ..blocks.schedules import byol_tau
from .method import AbstractMethod, Batch

__all__ = ["BYOL", "BYOLOnline"]


class BYOLOnline(eqx.Module):
    """BYOL's trainable network: backbone, projector and predictor."""

    backbone: vitcore.AbstractBackbone
    projector: MLPHead
    predictor: MLPHead

    def projection_network(self) -> EncoderWithHead:
        """The backbone + projector part, with the target's structure (what the EMA follows)."""
        return EncoderWithHead(self.backbone, self.projector)


class BYOL(AbstractMethod):
    """BYOL on a ``vitcore`` backbone (the MAE flavour of ``backbone``, ``encoder_config``, as the study; any
    vitcore family, e.g. an NFNet, as it is).

    ``tau_base``: the target EMA rate at step 0 (0.996 for ImageNet; 0.99 JFT/ALIGN, 0.97 COCO in the study),
    reaching 1 at ``total_steps``. Heads: projector ``proj_hidden_dim`` (4096) -> ``proj_dim`` (256), predictor
    ``pred_hidden_dim`` (4096) -> ``proj_dim``; ``head_norm`` as in ``sslmethods.blocks.heads``. Views: ``byol_views``.
    The loss is ``byol_loss(p1, z2') + byol_loss(p2, z1')`` (BYOL adds the two view orders; each term is
    ``mean_b (2 - 2 cos)``), with the target outputs under a stop-gradient. The target runs deterministically
    (``inference=True``: no drop path), like a teacher.
    """

    name: ClassVar[str] = "byol"
    tau_base: float = eqx.field(static=True, default=0.996)
    proj_hidden_dim: int = eqx.field(static=True, default=4096)
    proj_dim: int = eqx.field(static=True, default=256)
    pred_hidden_dim: int = eqx.field(static=True, default=4096)
    head_norm: str = eqx.field(static=True, default="layer")

    def __check_init__(self):
        self.image_size  # noqa: B018  (validates a square backbone)
        byol_tau(self.tau_base, self.total_steps)  # validates tau_base
        if self.head_norm not in HEAD_NORMS:
            raise ValueError(f"head_norm={self.head_norm!r}: expected one of {HEAD_NORMS}")

    @property
    def encoder_config(self) -> BackboneConfig:
        """The study's backbone for this method, MAE's ViT: ``backbone`` with sin-cos position embedding, MAE's
        xavier init and no classifier head (another family: ``backbone`` without a head)."""
        return mae_flavour(self.backbone)

    def tau(self, step: Int[Array, ""] | int) -> Float[Array, ""]:
        """The target EMA rate used by the update after optimizer step ``step``."""
        return byol_tau(self.tau_base, self.total_steps)(step)

    def analytic_macs(self, batch_size: int) -> float:
        """Forward + backward of the online encoder and a forward of the target encoder, on both views (heads
        are left out)."""
        return float(2 * batch_size * (train_macs(self.encoder_config) + forward_macs(self.encoder_config)))

    def init(self, *, key: PRNGKeyArray) -> tuple[BYOLOnline, dict[str, EncoderWithHead]]:
        k_backbone, k_proj, k_pred = jax.random.split(key, 3)
        backbone = vitcore.build(self.encoder_config, key=k_backbone)
        projector = byol_mlp(backbone.num_features, key=k_proj, hidden_dim=self.proj_hidden_dim,
                             out_dim=self.proj_dim, norm=self.head_norm)
        predictor = byol_mlp(self.proj_dim, key=k_pred, hidden_dim=self.pred_hidden_dim, out_dim=self.proj_dim,
                             norm=self.head_norm)
        online = BYOLOnline(backbone, projector, predictor)
        # The target starts as a copy of the online network (init_pretrain_state un-aliases the shared buffers).
        return online, {"target": online.projection_network()}

    def views(self, batch: Batch, *, step: Int[Array, ""], key: PRNGKeyArray) -> Batch:
        del step
        view1, view2 = make_views(batch["image"], byol_views(self.image_size), key=key)
        return {"view1": view1, "view2": view2}

    def loss(
        self, trainable: BYOLOnline, state: dict[str, EncoderWithHead], views: Batch, *, step: Int[Array, ""],
        key: PRNGKeyArray,
    ) -> tuple[Float[Array, ""], dict[str, Any]]:
        b = views["view1"].shape[0]
        images = jnp.concatenate([views["view1"], views["view2"]])
        features = trainable.backbone(images, key=key, inference=False).pooled
        # Heads run per view: BYOL applies its network to each view separately (batch statistics per view).
        p1, p2 = (trainable.predictor(trainable.projector(f)) for f in (features[:b], features[b:]))
        target = jax.lax.stop_gradient(state["target"])
        target_features = target.backbone(images, inference=True).pooled
        z1, z2 = (jax.lax.stop_gradient(target.head(f)) for f in (target_features[:b], target_features[b:]))
        loss = byol_loss(p1, z2) + byol_loss(p2, z1)
        metrics = {
            "tau": self.tau(step),
            "prediction_cosine": 0.5 * jnp.mean(cosine_similarity(p1, z2) + cosine_similarity(p2, z1)),
        }
        return loss, {"metrics": metrics}

    def update_state(
        self, trainable: BYOLOnline, state: dict[str, EncoderWithHead], aux: dict[str, Any], *, step: Int[Array, ""]
    ) -> dict[str, EncoderWithHead]:
        del aux
        return {"target": ema_update(state["target"], trainable.projection_network(), self.tau(step))}

    def encoder(self, trainable: BYOLOnline) -> vitcore.AbstractBackbone:
        return trainable.backbone

    def final_layers(self, trainable: BYOLOnline) -> tuple[eqx.Module, ...]:
        """The predictor's output layer (the online network's last)."""
        return (trainable.predictor.layers[-1],)

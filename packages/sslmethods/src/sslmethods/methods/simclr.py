"""SimCLR (Chen et al. 2020): two augmented views, a projector, NT-Xent over the global batch; no teacher.

Canonical code: google-research/simclr ``tf2`` (``model.py``, ``objective.py``, ``data_util.py``). The study trains
it like BYOL (Adam, lr 3e-4, wd 0.1, 5% warmup, cosine) without the target network, temperature 0.1, on the MAE
ViT (sin-cos position embedding), which the method builds from any ViT ``backbone`` config (``encoder_config``);
another vitcore family (an NFNet) is trained as it is::

    method = SimCLR(backbone=vitcore.get_config("vit-b16"), total_steps=250_000)
    trainable, state = method.init(key=key)      # state is {} (nothing non-trainable)
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import vitcore
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..blocks.augment import make_views, simclr_views
from ..blocks.backbones import BackboneConfig, mae_flavour, train_macs
from ..blocks.encoder_with_head import EncoderWithHead
from ..blocks.heads import HEAD_NORMS, simclr_projector
from ..blocks.losses import cosine_similarity, nt_xent
from .method import AbstractMethod, Batch

__all__ = ["SimCLR"]


class SimCLR(AbstractMethod):
    """SimCLR on a ``vitcore`` backbone; trainable = ``EncoderWithHead(backbone, projector)``, no state.

    ``backbone``: a backbone config (its ``image_size`` is the view size); the encoder built is its MAE flavour,
    ``encoder_config`` (`backbones.mae_flavour`). ``total_steps``: the run length
    (unused by SimCLR's loss; kept so every method is built the same way). ``temperature``: NT-Xent's 0.1.
    ``proj_hidden_dim`` (default: the backbone's ``num_features``), ``proj_dim`` (128), ``proj_layers`` (3),
    ``head_norm`` (see ``sslmethods.blocks.heads``). Views: ``simclr_views`` (``color_strength`` 1.0).
    """

    name: ClassVar[str] = "simclr"
    temperature: float = eqx.field(static=True, default=0.1)
    proj_hidden_dim: int | None = eqx.field(static=True, default=None)
    proj_dim: int = eqx.field(static=True, default=128)
    proj_layers: int = eqx.field(static=True, default=3)
    head_norm: str = eqx.field(static=True, default="layer")
    color_strength: float = eqx.field(static=True, default=1.0)

    def __check_init__(self):
        self.image_size  # noqa: B018  (validates a square backbone)
        if not self.temperature > 0:
            raise ValueError(f"temperature={self.temperature!r}: expected a positive number")
        if self.head_norm not in HEAD_NORMS:
            raise ValueError(f"head_norm={self.head_norm!r}: expected one of {HEAD_NORMS}")

    @property
    def encoder_config(self) -> BackboneConfig:
        """The study's backbone for this method, MAE's ViT: ``backbone`` with sin-cos position embedding, MAE's
        xavier init and no classifier head (another family: ``backbone`` without a head)."""
        return mae_flavour(self.backbone)

    def analytic_macs(self, batch_size: int) -> float:
        """Forward + backward of the encoder on both views (the projector is left out)."""
        return float(2 * batch_size * train_macs(self.encoder_config))

    def init(self, *, key: PRNGKeyArray) -> tuple[EncoderWithHead, dict[str, Any]]:
        k_backbone, k_proj = jax.random.split(key)
        backbone = vitcore.build(self.encoder_config, key=k_backbone)
        projector = simclr_projector(
            backbone.num_features, key=k_proj, hidden_dim=self.proj_hidden_dim, out_dim=self.proj_dim,
            num_layers=self.proj_layers, norm=self.head_norm,
        )
        return EncoderWithHead(backbone, projector), {}

    def views(self, batch: Batch, *, step: Int[Array, ""], key: PRNGKeyArray) -> Batch:
        del step
        view1, view2 = make_views(batch["image"], simclr_views(self.image_size, strength=self.color_strength),
                                  key=key)
        return {"view1": view1, "view2": view2}

    def loss(
        self, trainable: EncoderWithHead, state: Any, views: Batch, *, step: Int[Array, ""], key: PRNGKeyArray
    ) -> tuple[Float[Array, ""], dict[str, Any]]:
        del state, step
        b = views["view1"].shape[0]
        # One backbone pass over both views (2b images): the projector's batch statistics (head_norm="batch")
        # then cover both views, as in SimCLR where the views are concatenated along the batch.
        z = trainable(jnp.concatenate([views["view1"], views["view2"]]), key=key)
        z1, z2 = z[:b], z[b:]
        loss = nt_xent(z1, z2, temperature=self.temperature)
        metrics = {"positive_cosine": jnp.mean(cosine_similarity(z1, z2))}
        return loss, {"metrics": metrics}

    def encoder(self, trainable: EncoderWithHead) -> vitcore.AbstractBackbone:
        return trainable.backbone

    def final_layers(self, trainable: EncoderWithHead) -> tuple[eqx.Module, ...]:
        """The projector's output layer."""
        return (trainable.head.layers[-1],)

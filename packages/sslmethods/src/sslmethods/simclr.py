"""SimCLR (Chen et al. 2020): two augmented views, a projector, NT-Xent over the global batch; no teacher.

Canonical code: google-research/simclr ``tf2`` (``model.py``, ``objective.py``, ``data_util.py``). The study trains
it like BYOL (Adam, lr 3e-4, wd 0.1, 5% warmup, cosine) without the target network, temperature 0.1, on the MAE
ViT (sin-cos position embedding), which the method builds from any ``backbone`` config (``encoder_config``)::

    method = SimCLR(backbone=vitcore.get_config("vit-b16"), total_steps=250_000)
    trainable, state = method.init(key=key)      # state is {} (nothing non-trainable)
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import vitcore
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .augment import make_views, simclr_views
from .heads import HEAD_NORMS, MLPHead, simclr_projector
from .losses import nt_xent
from .method import AbstractMethod, Batch

__all__ = ["SimCLR", "SimCLRModel", "mae_vit_config", "square_image_size"]


def mae_vit_config(backbone: vitcore.ViTConfig) -> vitcore.ViTConfig:
    """MAE's ViT flavour of ``backbone`` (sin-cos position embedding, xavier init, no head): the study's encoder
    for SimCLR, BYOL, CLIP and MAE."""
    if not isinstance(backbone, vitcore.ViTConfig):
        raise TypeError(f"backbone={backbone!r}; expected a vitcore.ViTConfig (vitcore.get_config)")
    return dataclasses.replace(backbone, pos_embed="sincos", init="xavier", num_classes=0)


def square_image_size(backbone: vitcore.ViTConfig) -> int:
    """The backbone's (square) input size; the view recipes crop square images."""
    size = backbone.image_size
    if not isinstance(size, int):
        if size[0] != size[1]:
            raise ValueError(f"backbone.image_size={size}: expected a square image size")
        size = int(size[0])
    return size


def cosine_similarity(a: Float[Array, "b d"], b: Float[Array, "b d"]) -> Float[Array, " b"]:
    """Row-wise cosine similarity in float32 (a logged metric: how well the two views agree)."""
    a, b = a.astype(jnp.float32), b.astype(jnp.float32)
    norms = jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1)
    return jnp.sum(a * b, axis=-1) / jnp.maximum(norms, 1e-12)


class SimCLRModel(eqx.Module):
    """SimCLR's trainable part: the ViT backbone and the projection head on its pooled output."""

    backbone: vitcore.ViT
    projector: MLPHead

    def __call__(
        self, images: Float[Array, "b h w c"], *, key: PRNGKeyArray | None = None, inference: bool = False
    ) -> Float[Array, "b e"]:
        return self.projector(self.backbone(images, key=key, inference=inference).pooled)


class SimCLR(AbstractMethod):
    """SimCLR on a ``vitcore`` backbone.

    ``backbone``: a ViT config (its ``image_size`` is the view size); the encoder built is its MAE flavour,
    ``encoder_config``. ``total_steps``: the run length
    (unused by SimCLR's loss; kept so every method is built the same way). ``temperature``: NT-Xent's 0.1.
    ``proj_hidden_dim`` (default: the backbone width), ``proj_dim`` (128), ``proj_layers`` (3), ``head_norm``
    (see ``sslmethods.heads``). Views: ``simclr_views`` (``color_strength`` 1.0).
    """

    name: ClassVar[str] = "simclr"
    backbone: vitcore.ViTConfig = eqx.field(static=True, default=vitcore.get_config("vit-b16"))
    total_steps: int = eqx.field(static=True, default=250_000)
    temperature: float = eqx.field(static=True, default=0.1)
    proj_hidden_dim: int | None = eqx.field(static=True, default=None)
    proj_dim: int = eqx.field(static=True, default=128)
    proj_layers: int = eqx.field(static=True, default=3)
    head_norm: str = eqx.field(static=True, default="layer")
    color_strength: float = eqx.field(static=True, default=1.0)

    def __check_init__(self):
        square_image_size(self.encoder_config)
        if isinstance(self.total_steps, bool) or not isinstance(self.total_steps, int) or self.total_steps < 1:
            raise ValueError(f"total_steps={self.total_steps!r}: expected a positive int")
        if not self.temperature > 0:
            raise ValueError(f"temperature={self.temperature!r}: expected a positive number")
        if self.head_norm not in HEAD_NORMS:
            raise ValueError(f"head_norm={self.head_norm!r}: expected one of {HEAD_NORMS}")

    @property
    def image_size(self) -> int:
        return square_image_size(self.backbone)

    @property
    def encoder_config(self) -> vitcore.ViTConfig:
        """The study's backbone for this method, MAE's ViT: ``backbone`` with sin-cos position embedding, MAE's
        xavier init and no classifier head."""
        return mae_vit_config(self.backbone)

    def init(self, *, key: PRNGKeyArray) -> tuple[SimCLRModel, dict[str, Any]]:
        k_backbone, k_proj = jax.random.split(key)
        backbone = vitcore.ViT(self.encoder_config, key=k_backbone)
        projector = simclr_projector(
            self.backbone.width, key=k_proj, hidden_dim=self.proj_hidden_dim, out_dim=self.proj_dim,
            num_layers=self.proj_layers, norm=self.head_norm,
        )
        return SimCLRModel(backbone, projector), {}

    def views(self, batch: Batch, *, step: Int[Array, ""], key: PRNGKeyArray) -> Batch:
        del step
        view1, view2 = make_views(batch["image"], simclr_views(self.image_size, strength=self.color_strength),
                                  key=key)
        return {"view1": view1, "view2": view2}

    def loss(
        self, trainable: SimCLRModel, state: Any, views: Batch, *, step: Int[Array, ""], key: PRNGKeyArray
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

    def update_state(self, trainable: SimCLRModel, state: Any, aux: dict[str, Any], *, step: Int[Array, ""]) -> Any:
        del trainable, aux, step
        return state

    def encoder(self, trainable: SimCLRModel) -> vitcore.ViT:
        return trainable.backbone

    def weight_decay_mask(self, trainable: SimCLRModel) -> Any:
        # Every parameter named `weight` (backbone and head matmuls) decays; biases, norms, tokens do not.
        return vitcore.weight_decay_mask(trainable)

"""A new pre-training method composed from sslmethods' parts, without editing the library: SimCLR + a BYOL-style
predictor.

The SimCLR projections ``z1, z2`` of the two views go through a predictor MLP (``sslmethods.heads.byol_mlp``);
each prediction is contrasted (NT-Xent, temperature 0.1) against the *stop-gradient* projections of the other
view, BYOL-style, and the two view orders are averaged::

    loss = (nt_xent(q(z1), sg(z2)) + nt_xent(q(z2), sg(z1))) / 2

Everything else -- views, backbone, projector, weight decay, encoder export -- is reused from ``SimCLR``, held as
a static field. Train it with the engine like any built-in method::

    method = SimCLRWithPredictor(base=SimCLR(backbone=vitcore.get_config("vit-test"), total_steps=100))
    tx = make_optimizer(OptimConfig(lr=1e-3), 100, lambda p: decay_mask(method, p))
    state = init_train_state(method, tx, key=jax.random.key(0))
    state, metrics = make_train_step(method, tx)(state, {"image": images})
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import vitcore
from jaxtyping import Array, Float, Int, PRNGKeyArray
from sslmethods.heads import MLPHead, byol_mlp
from sslmethods.losses import nt_xent
from sslmethods.method import AbstractMethod, Batch
from sslmethods.simclr import SimCLR, SimCLRModel


class PredictorModel(eqx.Module):
    """SimCLR's trainable model plus the predictor."""

    simclr: SimCLRModel
    predictor: MLPHead


class SimCLRWithPredictor(AbstractMethod):
    """SimCLR whose predictions of one view are contrasted with the other view's (stop-gradient) projection."""

    name: ClassVar[str] = "simclr_predictor"
    base: SimCLR = eqx.field(static=True, default_factory=SimCLR)
    pred_hidden_dim: int = eqx.field(static=True, default=4096)

    @property
    def image_size(self) -> int:
        return self.base.image_size

    def init(self, *, key: PRNGKeyArray) -> tuple[PredictorModel, Any]:
        k_base, k_pred = jax.random.split(key)
        simclr, state = self.base.init(key=k_base)
        predictor = byol_mlp(self.base.proj_dim, key=k_pred, hidden_dim=self.pred_hidden_dim,
                             out_dim=self.base.proj_dim, norm=self.base.head_norm)
        return PredictorModel(simclr, predictor), state

    def views(self, batch: Batch, *, step: Int[Array, ""], key: PRNGKeyArray) -> Batch:
        return self.base.views(batch, step=step, key=key)

    def loss(
        self, trainable: PredictorModel, state: Any, views: Batch, *, step: Int[Array, ""], key: PRNGKeyArray
    ) -> tuple[Float[Array, ""], dict[str, Any]]:
        del state, step
        b = views["view1"].shape[0]
        z = trainable.simclr(jnp.concatenate([views["view1"], views["view2"]]), key=key)
        q = trainable.predictor(z)
        target = jax.lax.stop_gradient(z)
        t = self.base.temperature
        loss = 0.5 * (nt_xent(q[:b], target[b:], temperature=t) + nt_xent(q[b:], target[:b], temperature=t))
        return loss, {"metrics": {}}

    def update_state(self, trainable: PredictorModel, state: Any, aux: dict[str, Any], *,
                     step: Int[Array, ""]) -> Any:
        del trainable, aux, step
        return state

    def encoder(self, trainable: PredictorModel) -> vitcore.ViT:
        return self.base.encoder(trainable.simclr)

    def weight_decay_mask(self, trainable: PredictorModel) -> Any:
        return vitcore.weight_decay_mask(trainable)

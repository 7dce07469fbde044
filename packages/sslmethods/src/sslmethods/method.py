"""The contract between a pre-training method and the training engine.

A method is a small, static description (hyperparameters only, no arrays) that knows how to

1. ``init``: build its trainable modules (backbone + heads, one Equinox module) and its non-trainable state
   (EMA teacher, DINO centre, ...; any pytree, possibly empty);
2. ``views``: turn a batch of raw images (float32 NHWC in [0, 1]) into the augmented views it trains on, on device;
3. ``loss``: compute the scalar float32 loss from the trainable modules, the state and the views, returning
   auxiliary outputs (metrics, and whatever ``update_state`` needs, e.g. the teacher's output mean);
4. ``update_state``: advance the non-trainable state after the optimizer step (EMA teacher, centre).

On the host, ``method.prepare_batch`` turns each data-pipeline batch into arrays first. The engine composes the
rest into one jitted step::

    views = method.views(batch, step=step, key=k_aug)
    (loss, aux), grads = value_and_grad(method.loss, has_aux=True)(trainable, state, views, step=step, key=k_loss)
    grads = method.adjust_grads(trainable, grads, step=step)
    updates, opt_state = optimizer.update(grads, opt_state, trainable)
    trainable = apply_updates(trainable, updates)
    state = method.update_state(trainable, state, aux, step=step)

Everything that changes with the step (EMA momentum, teacher temperature, ...) is a schedule evaluated from the
``step`` argument, which the engine takes from the optimizer's step counter, so a resumed run is exact.
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
from jaxtyping import Array, Float, Int, PRNGKeyArray

Batch = dict[str, Array]
"""Keys the engine may provide: ``image`` [b h w c] float32 in [0, 1]; optionally ``label`` [b] int32,
``labels`` [b 8] int32 padded with -1, ``caption_ids`` [b L] int32 and ``caption_mask`` [b L] bool."""

Metrics = dict[str, Float[Array, ""]]


class AbstractMethod(eqx.Module):
    """A pre-training method. Concrete methods are final Equinox modules holding only static hyperparameters."""

    name: eqx.AbstractClassVar[str]
    """Registry name: one of ``supervised``, ``clip``, ``simclr``, ``byol``, ``dino``, ``mae`` (or a user's)."""

    @abc.abstractmethod
    def init(self, *, key: PRNGKeyArray) -> tuple[eqx.Module, Any]:
        """Returns ``(trainable, state)``: all trainable parameters as one module and the non-trainable pytree."""

    @abc.abstractmethod
    def views(self, batch: Batch, *, step: Int[Array, ""], key: PRNGKeyArray) -> Batch:
        """Augments a raw batch on device (fixed output shapes). Non-image entries are passed through as needed."""

    @abc.abstractmethod
    def loss(
        self, trainable: eqx.Module, state: Any, views: Batch, *, step: Int[Array, ""], key: PRNGKeyArray
    ) -> tuple[Float[Array, ""], dict[str, Any]]:
        """Scalar float32 loss and auxiliary outputs. ``aux["metrics"]`` holds scalar metrics to log."""

    @abc.abstractmethod
    def update_state(
        self, trainable: eqx.Module, state: Any, aux: dict[str, Any], *, step: Int[Array, ""]
    ) -> Any:
        """The non-trainable state after an optimizer step (return ``state`` unchanged when there is none)."""

    @abc.abstractmethod
    def encoder(self, trainable: eqx.Module) -> eqx.Module:
        """The backbone (a ``vitcore.ViT``) to export for transfer and probing."""

    @abc.abstractmethod
    def weight_decay_mask(self, trainable: eqx.Module) -> Any:
        """Pytree of bools matching ``eqx.filter(trainable, eqx.is_array)``: True where weight decay applies."""

    def prepare_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Host-side (numpy, outside jit) conversion of a data-pipeline batch into arrays the step can take.

        Runs before the batch is put on devices. The default drops non-array entries (e.g. ``caption`` strings);
        CLIP overrides it to tokenize captions (or pseudo-captions built from labels) into ``caption_ids`` and
        ``caption_mask``.
        """
        import numpy as np

        return {k: v for k, v in batch.items() if isinstance(v, np.ndarray) and v.dtype.kind in "biuf"}

    def adjust_grads(self, trainable: eqx.Module, grads: eqx.Module, *, step: Int[Array, ""]) -> eqx.Module:
        """Hook between backward and optimizer, e.g. DINO zeroes its last layer's gradients in the first epoch.

        The default returns ``grads`` unchanged.
        """
        del trainable, step
        return grads

    def post_update(self, trainable: eqx.Module, *, step: Int[Array, ""]) -> eqx.Module:
        """Hook after the optimizer update (e.g. CLIP clamps its logit scale). The default returns it unchanged."""
        del step
        return trainable

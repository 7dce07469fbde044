"""The detection training step as a pure function ``step_fn(state, batch) -> (new_state, metrics)``.

The state is an explicit pytree (`TrainState`: model, optimizer state, step, root key), so a training engine can
compile the step once, donate the state, shard the batch and checkpoint the state without knowing what is inside.
Per-step randomness is ``fold_in(key, step)`` (a resumed run draws the same samples). Nothing in the step syncs to
the host: metrics are device scalars; the engine decides when to read them (and guards against a non-finite
``loss``).

Until the engine lands, a plain loop drives it::

    state = init_train_state(model, optimizer, key=jr.key(0))
    step = jax.jit(make_step_fn(optimizer), donate_argnums=0)
    for batch in batches:
        state, metrics = step(state, {k: batch[k] for k in BATCH_FIELDS})
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Int, PRNGKeyArray, PyTree

from .model import MaskRCNN
from .objective import detection_loss

__all__ = ["TrainState", "init_train_state", "make_step_fn"]


class TrainState(eqx.Module):
    model: MaskRCNN
    opt_state: PyTree
    step: Int[Array, ""]
    key: PRNGKeyArray


def init_train_state(model: MaskRCNN, optimizer: optax.GradientTransformation, *, key: PRNGKeyArray) -> TrainState:
    """Step 0 of a run: the optimizer initialised on the model's arrays; ``key`` is the run's root key."""
    opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
    return TrainState(model=model, opt_state=opt_state, step=jnp.zeros((), jnp.int32), key=key)


def make_step_fn(
    optimizer: optax.GradientTransformation, *, schedule: optax.Schedule | None = None
) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
    """The pure step for ``optimizer``; with ``schedule`` the metrics also report the step's learning rate.

    ``batch`` holds `segtransfer.detection.BATCH_FIELDS` as device arrays (extra entries are ignored by the loss
    but still traced, so pass only those). The returned ``metrics`` are `detection_loss`'s plus ``grad_norm``.
    """

    def step_fn(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        key = jax.random.fold_in(state.key, state.step)
        (_, metrics), grads = eqx.filter_value_and_grad(detection_loss, has_aux=True)(state.model, batch, key=key)
        params = eqx.filter(state.model, eqx.is_array)
        updates, opt_state = optimizer.update(grads, state.opt_state, params)
        model = eqx.apply_updates(state.model, updates)
        metrics = dict(metrics, grad_norm=optax.global_norm(grads))
        if schedule is not None:
            metrics["lr"] = jnp.asarray(schedule(state.step), jnp.float32)
        new_state = TrainState(model=model, opt_state=opt_state, step=state.step + 1, key=state.key)
        return new_state, metrics

    return step_fn

"""The detection training step as a pure function ``step_fn(state, batch) -> (new_state, metrics)``:
`detection_loss` given to the engine's one step (`runloop.make_step_fn`).

The state is the engine's explicit pytree (`runloop.TrainState`: model, optimizer state, step, root key; no
``extra``), so a training engine can compile the step once, donate the state, shard the batch and checkpoint the
state without knowing what is inside.
Per-step randomness is ``fold_in(key, step)`` (a resumed run draws the same samples). Nothing in the step syncs to
the host: metrics are device scalars; the engine decides when to read them (and guards against a non-finite
``loss``).

`segtransfer.detection.detection_run` runs it through the engine (``runloop.train``); a plain loop works too::

    state = init_detection_state(model, optimizer, key=jr.key(0))
    step = jax.jit(make_detection_step(optimizer), donate_argnums=0)
    for batch in batches:
        state, metrics = step(state, {k: batch[k] for k in BATCH_FIELDS})
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, PRNGKeyArray
from runloop import TrainState, init_train_state, make_step_fn

from .model import MaskRCNN
from .objective import detection_loss

__all__ = ["init_detection_state", "abstract_detection_state", "make_detection_step", "batch_struct"]


def init_detection_state(model: MaskRCNN, optimizer: optax.GradientTransformation, *,
                         key: PRNGKeyArray) -> TrainState:
    """Step 0 of a run: the optimizer initialised on the model's arrays; ``key`` is the run's root key."""
    return init_train_state(model, optimizer, key=key, params_filter=eqx.is_array)


def abstract_detection_state(
    build_model: Callable[[PRNGKeyArray], MaskRCNN],
    build_optimizer: Callable[[MaskRCNN], optax.GradientTransformation],
    *,
    key: PRNGKeyArray,
) -> tuple[TrainState, optax.GradientTransformation]:
    """The `runloop.TrainState` as ``jax.ShapeDtypeStruct`` leaves, and the optimizer, without allocating a parameter.

    ``build_model(key)`` and ``build_optimizer(model)`` run once under ``eqx.filter_eval_shape``; the optimizer's
    parameter groups (decay mask, layer scales) depend only on the model's structure, so the one built there is
    the one to train with. For FLOP counts of the study-size step (`runloop.measure_step`) and sharding plans.
    """
    built = {}

    def init(k):
        model = build_model(k)
        built["optimizer"] = build_optimizer(model)
        return init_detection_state(model, built["optimizer"], key=k)

    state = eqx.filter_eval_shape(init, key)
    return state, built["optimizer"]


def batch_struct(batch_size: int, image_size: int, max_objects: int, mask_size: int) -> dict:
    """``jax.ShapeDtypeStruct``s of a training batch (`BATCH_FIELDS` as `segtransfer.detection.data` makes them)."""
    s = jax.ShapeDtypeStruct
    return {
        "image": s((batch_size, image_size, image_size, 3), jnp.float32),
        "boxes": s((batch_size, max_objects, 4), jnp.float32),
        "classes": s((batch_size, max_objects), jnp.int32),
        "masks": s((batch_size, max_objects, mask_size, mask_size), jnp.uint8),
        "valid": s((batch_size, max_objects), jnp.bool_),
        "image_hw": s((batch_size, 2), jnp.int32),
    }


def make_detection_step(
    optimizer: optax.GradientTransformation, *, schedule: optax.Schedule | None = None
) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
    """The pure step for ``optimizer``; with ``schedule`` the metrics also report the step's learning rate.

    ``batch`` holds `segtransfer.detection.BATCH_FIELDS` as device arrays (extra entries are ignored by the loss
    but still traced, so pass only those). The returned ``metrics`` are `detection_loss`'s plus ``grad_norm`` and
    ``finite`` (1.0 when the loss and the gradients are finite: the engine's NaN guard reads it).
    """

    def loss_fn(model: MaskRCNN, extra: None, batch: dict, *, step: Array, key: PRNGKeyArray) -> tuple[Array, dict]:
        loss, metrics = detection_loss(model, batch, key=key)
        return loss, {"metrics": metrics}

    return make_step_fn(loss_fn, optimizer, params_filter=eqx.is_array, lr_schedule=schedule)

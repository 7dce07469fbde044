"""A method's training state: `runloop.TrainState` built from an `AbstractMethod`.

The state is the engine's one ``TrainState(model, opt_state, extra, step, key)``: ``model`` is the method's
trainable module, ``extra`` its non-trainable state (EMA teacher, centre, ...), ``opt_state`` the optax state over
``params(model)`` (its floating-point arrays); the run's root key makes per-step randomness ``fold_in(key, step)``,
so a resumed run draws the same crops and masks. The leaf order (model, opt_state, extra, step, key) is the one
every pre-training checkpoint holds. ``abstract_pretrain_state`` builds the same pytree with
``eqx.filter_eval_shape`` (no allocation), so a paper-scale step can be measured on a laptop
(`runloop.measure_step`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import PRNGKeyArray
from runloop import TrainState, init_train_state

from ..methods.method import AbstractMethod
from .init_from import load_encoder_into
from .optim import OptimConfig, make_optimizer
from .run_length import RunLength


def params(trainable: eqx.Module) -> Any:
    """The optimised leaves of ``trainable``: its floating-point arrays (the rest is structure or constants)."""
    return eqx.filter(trainable, eqx.is_inexact_array)


def decay_mask(method: AbstractMethod, trainable: eqx.Module) -> Any:
    """``method.weight_decay_mask`` restricted to ``params(trainable)`` (non-float arrays are not optimised)."""
    mask = method.weight_decay_mask(trainable)
    arrays = eqx.filter(trainable, eqx.is_array)
    mask_leaves, mask_def = jax.tree.flatten(mask)
    array_leaves, array_def = jax.tree.flatten(arrays)
    if mask_def != array_def:
        raise ValueError(
            f"{type(method).__name__}.weight_decay_mask returned a pytree of structure {mask_def}; expected the "
            f"structure of eqx.filter(trainable, eqx.is_array): {array_def}"
        )
    kept = [m if eqx.is_inexact_array(a) else None for m, a in zip(mask_leaves, array_leaves, strict=True)]
    return jax.tree.unflatten(array_def, kept)


def agc_mask(method: AbstractMethod, trainable: eqx.Module) -> Any:
    """Bools over ``params(trainable)``: True where adaptive gradient clipping applies, i.e. everywhere but the
    parameters of ``method.final_layers(trainable)`` (the output layers Brock et al. 2021 do not clip)."""
    mask = jax.tree.map(lambda _: True, params(trainable))
    if not method.final_layers(mask):
        return mask
    # eqx.tree_at tells the (identical) True leaves apart; the layers are found in the mask's own structure.
    return eqx.tree_at(lambda m: [x for layer in method.final_layers(m) for x in jax.tree.leaves(layer)], mask,
                       replace_fn=lambda _: False)


def method_optimizer(method: AbstractMethod, cfg: OptimConfig, total_steps: int | RunLength
                     ) -> optax.GradientTransformation:
    """``make_optimizer`` with the method's weight-decay mask (``decay_mask``) and, with ``cfg.agc``, its
    adaptive-clipping mask (``agc_mask``). ``total_steps``: an int or a `RunLength` (lengths as data)."""
    return make_optimizer(cfg, total_steps, wd_mask=lambda p: decay_mask(method, p),
                          agc_mask=lambda p: agc_mask(method, p))


def init_pretrain_state(
    method: AbstractMethod, optimizer: optax.GradientTransformation, *, key: PRNGKeyArray,
    encoder: Any = None,
) -> TrainState:
    """A fresh state at step 0. ``key`` is split once: one part initialises the method, the other is the root of
    all per-step randomness. ``encoder`` (a ``vitcore`` backbone, e.g. a first stage's): loaded in place of the
    method's encoder (`init_from.load_encoder_into`) before the optimizer state is built. An EMA teacher built as
    a copy of the student gets its own buffers (`runloop.init_train_state`)."""
    k_init, k_root = jax.random.split(key)
    trainable, method_state = method.init(key=k_init)
    if encoder is not None:
        trainable, method_state = load_encoder_into(method, trainable, method_state, encoder)
    return init_train_state(trainable, optimizer, key=k_root, extra=method_state)


def _batch_struct(batch_shape: Mapping[str, jax.ShapeDtypeStruct] | tuple[int, ...]) -> dict[str, Any]:
    """A batch of ``jax.ShapeDtypeStruct``: a tuple is the ``image`` shape (b, h, w, c) in float32."""
    if isinstance(batch_shape, tuple):
        if len(batch_shape) != 4:
            raise ValueError(f"batch_shape={batch_shape}; expected (b, h, w, c) or a dict of ShapeDtypeStruct")
        return {"image": jax.ShapeDtypeStruct(batch_shape, jnp.float32)}
    return dict(batch_shape)


def abstract_pretrain_state(
    method: AbstractMethod,
    optimizer: optax.GradientTransformation,
    batch_shape: Mapping[str, jax.ShapeDtypeStruct] | tuple[int, ...],
) -> tuple[TrainState, dict[str, Any]]:
    """``(state, batch)`` as ``jax.ShapeDtypeStruct`` leaves (static structure kept), built without allocating,
    ready for ``runloop.measure_step(make_method_step(method, optimizer), state, batch)``."""
    state = eqx.filter_eval_shape(lambda k: init_pretrain_state(method, optimizer, key=k), jax.random.key(0))
    return state, _batch_struct(batch_shape)

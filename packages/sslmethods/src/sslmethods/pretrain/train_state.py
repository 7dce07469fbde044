"""The training state: everything a step reads and writes, as one explicit pytree.

``TrainState`` holds the trainable module, the optimizer state, the method's non-trainable state, the step counter
and the run's root PRNG key (per-step randomness is ``fold_in(key, step)``, so a resumed run draws the same crops
and masks). ``abstract_train_state`` builds the same pytree with ``eqx.filter_eval_shape`` (no allocation), so a
paper-scale step can be measured by ``flopmeter.measure`` on a laptop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Int, PRNGKeyArray

from ..methods.method import AbstractMethod
from .init_from import load_encoder_into
from .optim import OptimConfig, make_optimizer
from .run_length import RunLength


class TrainState(eqx.Module):
    """``trainable``: the method's trainable module (arrays + static structure); ``opt_state``: optax state over
    ``params(trainable)``; ``method_state``: EMA teacher, centre, ... (any pytree); ``step``: int32 count of
    applied optimizer updates; ``key``: the run's root key (never split in place)."""

    trainable: eqx.Module
    opt_state: optax.OptState
    method_state: Any
    step: Int[Array, ""]
    key: PRNGKeyArray


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


def init_train_state(
    method: AbstractMethod, optimizer: optax.GradientTransformation, *, key: PRNGKeyArray,
    encoder: Any = None,
) -> TrainState:
    """A fresh state at step 0. ``key`` is split once: one part initialises the method, the other is the root of
    all per-step randomness. ``encoder`` (a ``vitcore`` backbone, e.g. a first stage's): loaded in place of the
    method's encoder (`init_from.load_encoder_into`) before the optimizer state is built."""
    k_init, k_root = jax.random.split(key)
    trainable, method_state = method.init(key=k_init)
    if encoder is not None:
        trainable, method_state = load_encoder_into(method, trainable, method_state, encoder)
    opt_state = optimizer.init(params(trainable))
    state = TrainState(trainable, opt_state, method_state, jnp.zeros((), jnp.int32), k_root)
    return _unalias(state)


def _unalias(state: TrainState) -> TrainState:
    """Copies leaves that share a buffer with an earlier leaf (an EMA teacher initialised as the student), since
    a donated state must not hold the same buffer twice."""
    seen: set[int] = set()

    def fresh(x: Any) -> Any:
        if not isinstance(x, jax.Array) or isinstance(x, jax.core.Tracer):
            return x
        if id(x) in seen:
            return jnp.copy(x)
        seen.add(id(x))
        return x

    return jax.tree.map(fresh, state)


def batch_struct(batch_shape: Mapping[str, jax.ShapeDtypeStruct] | tuple[int, ...]) -> dict[str, Any]:
    """A batch of ``jax.ShapeDtypeStruct``: a tuple is the ``image`` shape (b, h, w, c) in float32."""
    if isinstance(batch_shape, tuple):
        if len(batch_shape) != 4:
            raise ValueError(f"batch_shape={batch_shape}; expected (b, h, w, c) or a dict of ShapeDtypeStruct")
        return {"image": jax.ShapeDtypeStruct(batch_shape, jnp.float32)}
    return dict(batch_shape)


def abstract_train_state(
    method: AbstractMethod,
    optimizer: optax.GradientTransformation,
    batch_shape: Mapping[str, jax.ShapeDtypeStruct] | tuple[int, ...],
) -> tuple[TrainState, dict[str, Any]]:
    """``(state, batch)`` as ``jax.ShapeDtypeStruct`` leaves (static structure kept), built without allocating,
    ready for ``flopmeter.measure(make_step_fn(method, optimizer), state, batch)``."""
    state = eqx.filter_eval_shape(lambda k: init_train_state(method, optimizer, key=k), jax.random.key(0))
    return state, batch_struct(batch_shape)

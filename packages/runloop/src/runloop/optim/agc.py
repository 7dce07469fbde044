"""Adaptive gradient clipping (AGC; Brock, De, Smith, Simonyan 2021, "High-Performance Large-Scale Image
Recognition Without Normalization", section 4) as an optax transform.

Every *unit* (one output row of a weight: all axes but the output axis) has its gradient G rescaled to
``clipping * max(||W||, eps) / ||G||`` times itself when ``||G|| / max(||W||, eps) > clipping``. Vectors and
scalars (biases, gains) are one unit each. This is deepmind-research ``nfnets/agc_optax.py`` (``unitwise_norm``,
``my_clip``) for this repository's layouts: vitcore stores the output axis FIRST ([out, in] linears, OIHW
convolutions), whereas DeepMind's haiku kernels (and ``optax.adaptive_grad_clip``'s default axes) put it
last, so optax's version would normalise over the wrong axes here.

Layer-stacked weights (a `vitcore` block stack with ``scan_layers=True`` keeps its ``depth`` blocks' weights on
one leading axis: ``[depth, out, in]``) are ``depth`` separate parameters of the model; ``stacked_axes`` says how
many leading axes of a leaf are such stacking axes, and every stacked slice gets the unstacked rule (one norm per
layer and output unit, one per layer for a stacked bias). Give it as an int for every leaf, a pytree of ints
shaped like the parameters, or a function ``params -> that pytree`` (e.g. ``vitcore.stacked_axes``).

The paper does not clip the final classifier; exclude it with ``optax.masked``::

    params = eqx.filter(model, eqx.is_array)
    clip_mask = jax.tree.map(lambda _: True, params)
    clip_mask = eqx.tree_at(lambda m: (m.head.weight, m.head.bias), clip_mask, replace=(False, False))
    agc = runloop.optim.adaptive_grad_clip(0.01, stacked_axes=vitcore.stacked_axes)
    tx = optax.chain(optax.masked(agc, clip_mask), optax.sgd(lr, 0.9, nesterov=True))
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike, Float

# DeepMind's floor on the gradient norm in the rescaling (avoids 0/0 for an all-zero gradient).
_GRAD_NORM_FLOOR = 1e-6


def unitwise_norm(x: Float[ArrayLike, "..."], output_axis: int = 0, stacked_axes: int = 0) -> Float[Array, "..."]:
    """L2 norm of every unit of ``x``, broadcastable against ``x``. The first ``stacked_axes`` axes index
    separate parameters (stacked layers) and are never reduced; each slice ``x[i, ...]`` is then one parameter:
    normed over all its axes but ``output_axis`` (counted within the slice) when it has more than one non-singleton
    axis, over the whole slice when it is a scalar or a vector."""
    x = jnp.asarray(x)
    if not 0 <= stacked_axes <= x.ndim:
        raise ValueError(f"stacked_axes={stacked_axes!r}; expected 0..{x.ndim} for an array of shape {x.shape}")
    unit_shape = x.shape[stacked_axes:]
    unit_axes = range(stacked_axes, x.ndim)
    if sum(d != 1 for d in unit_shape) <= 1:  # scalars and vectors (DeepMind squeezes before counting axes)
        axes = tuple(unit_axes)
    else:
        kept = stacked_axes + output_axis % len(unit_shape)
        axes = tuple(a for a in unit_axes if a != kept)
    return jnp.sqrt(jnp.sum(jnp.square(x), axis=axes, keepdims=True))


def adaptive_grad_clip(
    clipping: float,
    eps: float = 1e-3,
    output_axis: int = 0,
    stacked_axes: int | Any | Callable[[Any], Any] = 0,
) -> optax.GradientTransformation:
    """AGC with clip ratio ``clipping`` (lambda; the paper uses 0.01 at batch 4096 for NFNet-F models) and
    ``eps`` (1e-3) on the parameter norm, so zero-initialised parameters can still move. ``stacked_axes``: leading
    stacking axes per leaf (see the module docstring). Needs ``params`` in ``update``. Stateless; compose with
    ``optax.chain``."""
    if not clipping > 0:
        raise ValueError(f"clipping={clipping!r}; expected a positive clip ratio (the paper uses 0.01-0.16)")
    if not eps > 0:
        raise ValueError(f"eps={eps!r}; expected > 0 (DeepMind uses 1e-3)")

    def clip(grad: Array, param: Array, stacked: int) -> Array:
        grad_norm = unitwise_norm(grad, output_axis, stacked)
        max_norm = clipping * jnp.maximum(unitwise_norm(param, output_axis, stacked), eps)
        scaled = grad * (max_norm / jnp.maximum(grad_norm, _GRAD_NORM_FLOOR)).astype(grad.dtype)
        return jnp.where(grad_norm < max_norm, grad, scaled)

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("adaptive_grad_clip needs params: call tx.update(grads, state, params)")
        if isinstance(stacked_axes, int):
            return jax.tree.map(lambda g, p: clip(g, p, stacked_axes), updates, params), state
        stacked = stacked_axes(params) if callable(stacked_axes) else stacked_axes
        return jax.tree.map(clip, updates, params, stacked), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)

"""Sharpness-aware minimisation (SAM; Foret, Kleiner, Mobahi, Neyshabur 2021) as an optax transform.

SAM replaces the gradient g = grad L(w) by the gradient at the worst nearby point of an L2 ball of radius rho:

    e = rho * g / ||g||          (||.|| the global L2 norm over all parameters)
    g_sam = grad L(w + e)

and hands g_sam to the base optimizer. The second gradient evaluation needs the loss, so, as in optax's
``optax.contrib.sam(..., opaque_mode=True)``, the transform takes the gradient function as an extra argument of
``update`` and must come first in the chain. Each step costs two forward+backward passes.

Two ways to perturb, as Foret et al. discuss ("m-sharpness", section 4.1 and appendix C.3):

- ``per_device=False`` (whole batch, the default): one perturbation from the gradient of the whole batch, m = the
  batch size. ``update`` takes ``grad_fn(params) -> grads``::

      tx = optax.chain(runloop.optim.sam.sam(rho=0.05), optax.sgd(0.1, momentum=0.9))
      params, static = eqx.partition(model, eqx.is_array)
      grad_fn = jax.grad(lambda p: loss(eqx.combine(p, static), batch))
      updates, opt_state = tx.update(grad_fn(params), opt_state, params, grad_fn=grad_fn)

- ``per_device=True`` (google-research/sam's training loop): the batch is split into its per-device shards;
  each shard computes its own ascent direction e_k = rho g_k / ||g_k|| from its own gradient g_k and its own
  gradient at w + e_k; the step uses their mean, (1/K) sum_k grad L_k(w + e_k), m = the per-device batch. Foret
  et al. found the smaller m generalises better. ``update`` takes ``shard_grad_fn(stacked_params) ->
  stacked_grads`` (leading axis: one entry per shard, see `sharded_grad_fn`) and ``shard_grads``, the shards'
  gradients at ``params`` (the step computes them anyway, so they are not recomputed).

Whole-batch stays the default because it is what every run recorded so far used (a resumed run keeps its
optimizer), and because with one shard the two are the same computation. `runloop.make_step_fn` with
``grad_shards=K`` hands both forms what they need; K equal slices of the batch (`split_batch`) stand for the K
devices, so the per-device form gives the same result on one device as on K.
"""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Int, PyTree

# Guard for a zero gradient: the perturbation is then zero instead of 0/0.
_NORM_FLOOR = 1e-12


def sam_perturbation(grads: PyTree, rho: float) -> PyTree:
    """e = rho * g / ||g||, with ||g|| the global L2 norm of the gradient pytree (0 for a zero gradient)."""
    norm = optax.tree.norm(grads)
    scale = rho / jnp.maximum(norm, _NORM_FLOOR)
    return jax.tree.map(lambda g: g * scale.astype(g.dtype), grads)


def sam_gradients(grad_fn: Callable[[PyTree], PyTree], params: PyTree, grads: PyTree, rho: float) -> PyTree:
    """grad L(w + rho * g / ||g||): ``grad_fn`` evaluated at the SAM-perturbed ``params`` (``grads`` = g at w)."""
    return grad_fn(optax.apply_updates(params, sam_perturbation(grads, rho)))


def per_device_sam_gradients(
    shard_grad_fn: Callable[[PyTree], PyTree], params: PyTree, shard_grads: PyTree, rho: float
) -> PyTree:
    """(1/K) sum_k grad L_k(w + rho g_k / ||g_k||): every shard k perturbed along its own gradient ``shard_grads[k]``
    (leading axis K), ``shard_grad_fn`` evaluated at the K perturbed copies, then averaged over the shards."""
    perturbations = jax.vmap(lambda g: sam_perturbation(g, rho))(shard_grads)
    shards = jax.tree.leaves(shard_grads)[0].shape[0]
    def perturb(e: Any, p: Any) -> Any:
        if e is not None:
            return p[None] + e
        # No gradient (an integer array, or a leaf filtered out as None): not perturbed, only stacked for the vmap.
        return None if p is None else jnp.broadcast_to(p, (shards, *jnp.shape(p)))

    perturbed = jax.tree.map(perturb, perturbations, params, is_leaf=lambda x: x is None)
    return jax.tree.map(lambda g: jnp.mean(g, axis=0), shard_grad_fn(perturbed))


def split_batch(batch: PyTree, shards: int) -> PyTree:
    """``batch`` with every leaf [B, ...] reshaped to [shards, B / shards, ...]: ``shards`` equal, contiguous
    slices along the leading axis (the slices a data-parallel sharding over ``shards`` devices puts on each).
    ValueError when ``shards`` is not a positive divisor of B."""
    leaves = jax.tree.leaves(batch)
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1 or any(
            x.shape[0] % shards for x in leaves):
        raise ValueError(f"shards={shards!r}; expected a positive divisor of the batch size "
                         f"{leaves[0].shape[0] if leaves else None}")
    return jax.tree.map(lambda x: x.reshape(shards, x.shape[0] // shards, *x.shape[1:]), batch)


def sharded_grad_fn(
    loss_fn: Callable[[PyTree, Any, Int[Array, ""]], Array], batch: PyTree, shards: int
) -> Callable[[PyTree], PyTree]:
    """``stacked_params -> stacked_grads``: the gradient of ``loss_fn(params, shard_batch, shard_index)`` for each
    of ``shards`` equal, contiguous slices of ``batch`` along its leading axis (`split_batch`), at the matching
    entry of ``stacked_params`` (leading axis ``shards``). Integer leaves of the parameters get no gradient (None),
    as under ``eqx.filter_grad``."""
    split = split_batch(batch, shards)
    grad = eqx.filter_grad(loss_fn)

    def fn(stacked_params: PyTree) -> PyTree:
        return jax.vmap(grad)(stacked_params, split, jnp.arange(shards))

    return fn


def sam(rho: float = 0.05, *, per_device: bool = False) -> optax.GradientTransformationExtraArgs:
    """SAM with neighbourhood radius ``rho`` (Foret et al.: 0.05 on ImageNet). ``per_device=False``: ``update``
    needs ``params`` and the keyword ``grad_fn``; ``per_device=True``: ``params`` and the keywords
    ``shard_grad_fn`` and ``shard_grads`` (see the module docstring). It returns the SAM gradient, for the
    transforms after it."""
    if not rho > 0:
        raise ValueError(f"rho={rho!r}; expected a positive neighbourhood radius (Foret et al. use 0.05)")

    def update_fn(updates, state, params=None, *, grad_fn=None, shard_grad_fn=None, shard_grads=None,
                  **extra_args):
        del extra_args
        if per_device:
            if params is None or shard_grad_fn is None or shard_grads is None:
                raise ValueError(
                    "sam(per_device=True) needs params, shard_grad_fn and shard_grads: call tx.update(grads, state, "
                    "params, shard_grad_fn=f, shard_grads=g) with f(stacked params) -> stacked grads per shard "
                    "(runloop.optim.sam.sharded_grad_fn) and g = the shards' gradients at params"
                )
            return per_device_sam_gradients(shard_grad_fn, params, shard_grads, rho), state
        if params is None or grad_fn is None:
            raise ValueError(
                "sam needs params and grad_fn: call tx.update(grads, state, params, grad_fn=grad_fn) with "
                "grad_fn(params) -> grads of the same loss"
            )
        return sam_gradients(grad_fn, params, updates, rho), state

    return optax.GradientTransformationExtraArgs(lambda params: optax.EmptyState(), update_fn)

"""Sharpness-aware minimisation (SAM; Foret, Kleiner, Mobahi, Neyshabur 2021) as an optax transform.

SAM replaces the gradient g = grad L(w) by the gradient at the worst nearby point of an L2 ball of radius rho:

    e = rho * g / ||g||          (||.|| the global L2 norm over all parameters)
    g_sam = grad L(w + e)

and hands g_sam to the base optimizer. The second gradient evaluation needs the loss, so, as in optax's
``optax.contrib.sam(..., opaque_mode=True)``, the transform takes the gradient function as an extra argument of
``update`` (``grad_fn(params) -> grads``) and must come first in the chain::

    tx = optax.chain(runloop.sam.sam(rho=0.05), optax.sgd(0.1, momentum=0.9))
    params, static = eqx.partition(model, eqx.is_array)
    grad_fn = jax.grad(lambda p: loss(eqx.combine(p, static), batch))
    grads = grad_fn(params)
    updates, opt_state = tx.update(grads, opt_state, params, grad_fn=grad_fn)

Each step costs two forward+backward passes. Under data parallelism ``grad_fn`` sees the global batch (one
perturbation for the whole batch, Foret et al.'s m = batch size).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from jaxtyping import PyTree

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


def sam(rho: float = 0.05) -> optax.GradientTransformationExtraArgs:
    """SAM with neighbourhood radius ``rho`` (Foret et al.: 0.05 on ImageNet). ``update`` needs ``params`` and
    the keyword ``grad_fn``; it returns the gradient at the perturbed point, for the transforms after it."""
    if not rho > 0:
        raise ValueError(f"rho={rho!r}; expected a positive neighbourhood radius (Foret et al. use 0.05)")

    def update_fn(updates, state, params=None, *, grad_fn=None, **extra_args):
        del extra_args
        if params is None or grad_fn is None:
            raise ValueError(
                "sam needs params and grad_fn: call tx.update(grads, state, params, grad_fn=grad_fn) with "
                "grad_fn(params) -> grads of the same loss"
            )
        return sam_gradients(grad_fn, params, updates, rho), state

    return optax.GradientTransformationExtraArgs(lambda params: optax.EmptyState(), update_fn)

"""Per-tensor gradient-norm clipping, DINO's rule (facebookresearch/dino ``utils.clip_gradients``) as an optax
transform.

Every gradient tensor ``g`` is clipped on its own: ``coef = max_norm / (||g|| + 1e-6)`` and ``g <- coef * g`` when
``coef < 1``. Unlike ``optax.clip_by_global_norm``, a tensor's clip does not depend on the others, so one large
gradient (DINO's head early in training) does not shrink every other tensor's step; at the same threshold it is
far looser than a global clip on a model with hundreds of tensors. ::

    tx = optax.chain(runloop.optim.per_tensor_clip_by_norm(1.0), optax.adamw(lr))
"""

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array

# DINO's clip_gradients: clip / (param_norm + 1e-6), so an all-zero gradient gets a finite coefficient.
_NORM_EPS = 1e-6


def per_tensor_clip_by_norm(max_norm: float) -> optax.GradientTransformation:
    """Scales each gradient leaf whose L2 norm exceeds ``max_norm`` (more exactly: whose ``max_norm / (norm +
    1e-6)`` is below 1) down to that norm; other leaves pass unchanged. Norms are computed in float32; the result
    keeps each leaf's dtype. Stateless; compose with ``optax.chain``."""
    if isinstance(max_norm, bool) or not isinstance(max_norm, int | float) or not max_norm > 0:
        raise ValueError(f"max_norm={max_norm!r}; expected a number > 0 (DINO's --clip_grad, e.g. 3.0 or 1.0)")

    def clip(grad: Array) -> Array:
        norm = jnp.sqrt(jnp.sum(jnp.square(grad.astype(jnp.float32))))
        coef = jnp.float32(max_norm) / (norm + jnp.float32(_NORM_EPS))
        return jnp.where(coef < 1.0, grad * coef.astype(grad.dtype), grad)

    def update_fn(updates, state, params=None):
        del params
        return jax.tree.map(clip, updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)

"""Adaptive gradient clipping (AGC; Brock, De, Smith, Simonyan 2021, "High-Performance Large-Scale Image
Recognition Without Normalization", section 4) as an optax transform.

Every *unit* (one output row of a weight: all axes but the output axis) has its gradient G rescaled to
``clipping * max(||W||, eps) / ||G||`` times itself when ``||G|| / max(||W||, eps) > clipping``. Vectors and
scalars (biases, gains) are one unit each. This is deepmind-research ``nfnets/agc_optax.py`` (``unitwise_norm``,
``my_clip``) for this repository's layouts: vitcore stores the output axis FIRST ([out, in] linears, OIHW
convolutions), whereas DeepMind's haiku kernels (and ``optax.adaptive_grad_clip``'s default axes) put it
last, so optax's version would normalise over the wrong axes here.

The paper does not clip the final classifier; exclude it with ``optax.masked``::

    params = eqx.filter(model, eqx.is_array)
    clip_mask = jax.tree.map(lambda _: True, params)
    clip_mask = eqx.tree_at(lambda m: (m.head.weight, m.head.bias), clip_mask, replace=(False, False))
    tx = optax.chain(optax.masked(runloop.agc.adaptive_grad_clip(0.01), clip_mask), optax.sgd(lr, 0.9))
"""

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike, Float

# DeepMind's floor on the gradient norm in the rescaling (avoids 0/0 for an all-zero gradient).
_GRAD_NORM_FLOOR = 1e-6


def unitwise_norm(x: Float[ArrayLike, "..."], output_axis: int = 0) -> Float[Array, "..."]:
    """L2 norm of every unit of ``x``, broadcastable against ``x``: over all axes but ``output_axis`` for
    arrays with more than one non-singleton axis, over the whole array for scalars and vectors."""
    x = jnp.asarray(x)
    if jnp.squeeze(x).ndim <= 1:
        return jnp.sqrt(jnp.sum(jnp.square(x), keepdims=True))
    axes = tuple(a for a in range(x.ndim) if a != output_axis % x.ndim)
    return jnp.sqrt(jnp.sum(jnp.square(x), axis=axes, keepdims=True))


def adaptive_grad_clip(clipping: float, eps: float = 1e-3, output_axis: int = 0) -> optax.GradientTransformation:
    """AGC with clip ratio ``clipping`` (lambda; the paper uses 0.01 at batch 4096 for NFNet-F models) and
    ``eps`` (1e-3) on the parameter norm, so zero-initialised parameters can still move. Needs ``params`` in
    ``update``. Stateless; compose with ``optax.chain``."""
    if not clipping > 0:
        raise ValueError(f"clipping={clipping!r}; expected a positive clip ratio (the paper uses 0.01-0.16)")
    if not eps > 0:
        raise ValueError(f"eps={eps!r}; expected > 0 (DeepMind uses 1e-3)")

    def clip(grad: Array, param: Array) -> Array:
        grad_norm = unitwise_norm(grad, output_axis)
        max_norm = clipping * jnp.maximum(unitwise_norm(param, output_axis), eps)
        scaled = grad * (max_norm / jnp.maximum(grad_norm, _GRAD_NORM_FLOOR)).astype(grad.dtype)
        return jnp.where(grad_norm < max_norm, grad, scaled)

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("adaptive_grad_clip needs params: call tx.update(grads, state, params)")
        return jax.tree.map(clip, updates, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)

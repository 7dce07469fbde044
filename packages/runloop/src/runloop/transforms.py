"""optax building blocks shared by the packages' optimizer recipes (the recipes stay with their packages).

- `standard_promotion(tx)`: runs ``tx`` under numpy-style dtype promotion. optax's Adam bias correction computes
  ``b1 ** count`` (a Python float to an int32 power), which JAX's strict promotion mode (used by our tests)
  rejects; the result is float32 either way, so only that check is relaxed, and only inside ``tx``.
- `scale_by_tree(scales)`: multiplies each update leaf by the matching float of ``scales`` (layer-wise or
  head-vs-backbone learning-rate multipliers, mmseg's ``lr_mult``).

Example::

    tx = standard_promotion(optax.chain(optax.clip_by_global_norm(1.0), optax.scale_by_adam(), ...))
"""

from __future__ import annotations

from typing import Any

import jax
import optax

__all__ = ["scale_by_tree", "standard_promotion"]


def standard_promotion(tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """``tx`` with ``jax.numpy_dtype_promotion("standard")`` around its ``init`` and ``update``."""

    def init(params: Any) -> optax.OptState:
        with jax.numpy_dtype_promotion("standard"):
            return tx.init(params)

    def update(updates: Any, state: optax.OptState, params: Any = None) -> tuple[Any, optax.OptState]:
        with jax.numpy_dtype_promotion("standard"):
            return tx.update(updates, state, params)

    return optax.GradientTransformation(init, update)


def scale_by_tree(scales: Any) -> optax.GradientTransformation:
    """Stateless: ``update * scale`` leaf by leaf; ``scales`` is a pytree of floats shaped like the updates."""

    def init(params: Any) -> optax.OptState:
        del params
        return optax.EmptyState()

    def update(updates: Any, state: optax.OptState, params: Any = None) -> tuple[Any, optax.OptState]:
        del params
        return jax.tree.map(lambda u, s: u * s, updates, scales), state

    return optax.GradientTransformation(init, update)

"""`standard_promotion(tx)`: runs an optax transform under numpy-style dtype promotion.

optax's Adam bias correction computes ``b1 ** count`` (a Python float to an int32 power), which JAX's strict
promotion mode (used by our tests) rejects; the result is float32 either way, so only that check is relaxed, and
only inside ``tx``. Example::

    tx = standard_promotion(optax.chain(optax.clip_by_global_norm(1.0), optax.scale_by_adam(), ...))
"""

from __future__ import annotations

from typing import Any

import jax
import optax

__all__ = ["standard_promotion"]


def standard_promotion(tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """``tx`` with ``jax.numpy_dtype_promotion("standard")`` around its ``init`` and ``update``."""

    def init(params: Any) -> optax.OptState:
        with jax.numpy_dtype_promotion("standard"):
            return tx.init(params)

    def update(updates: Any, state: optax.OptState, params: Any = None) -> tuple[Any, optax.OptState]:
        with jax.numpy_dtype_promotion("standard"):
            return tx.update(updates, state, params)

    return optax.GradientTransformation(init, update)

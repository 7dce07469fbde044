"""`scale_by_tree(scales)`: multiplies each update leaf by the matching float of ``scales`` (layer-wise or
head-vs-backbone learning-rate multipliers, mmseg's ``lr_mult``)."""

from __future__ import annotations

from typing import Any

import jax
import optax

__all__ = ["scale_by_tree"]


def scale_by_tree(scales: Any) -> optax.GradientTransformation:
    """Stateless: ``update * scale`` leaf by leaf; ``scales`` is a pytree of floats shaped like the updates."""

    def init(params: Any) -> optax.OptState:
        del params
        return optax.EmptyState()

    def update(updates: Any, state: optax.OptState, params: Any = None) -> tuple[Any, optax.OptState]:
        del params
        return jax.tree.map(lambda u, s: u * s, updates, scales), state

    return optax.GradientTransformation(init, update)

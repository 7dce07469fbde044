"""A tiny task for the engine's tests: linear regression trained with Adam, noise drawn from the step's key.

``ToyState`` has the shape of a real training state (module, optimizer state, step counter, root key); the step
is pure and returns ``loss``, ``grad_norm`` and ``finite``. ``ArrayData`` yields deterministic batches (batch
``i`` depends only on ``i``) with grain's ``get_state``/``set_state``; ``nan_from``/``scale_from`` spoil batches.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Int, PRNGKeyArray
from runloop import TrainTask, standard_promotion

IN, OUT = 16, 8


class ToyState(eqx.Module):
    model: eqx.nn.Linear
    opt_state: Any
    step: Int[Array, ""]
    key: PRNGKeyArray


def optimizer() -> optax.GradientTransformation:
    return standard_promotion(optax.chain(optax.clip_by_global_norm(10.0), optax.adam(0.05)))


def init(seed: int = 0) -> ToyState:
    k_model, k_root = jax.random.split(jax.random.key(seed))
    model = eqx.nn.Linear(IN, OUT, key=k_model)
    return ToyState(model, optimizer().init(eqx.filter(model, eqx.is_array)), jnp.zeros((), jnp.int32), k_root)


def step(state: ToyState, batch: dict[str, Array]) -> tuple[ToyState, dict[str, Array]]:
    noise = 0.01 * jax.random.normal(jax.random.fold_in(state.key, state.step), batch["x"].shape)

    def loss_fn(model: eqx.nn.Linear) -> Array:
        pred = jax.vmap(model)(batch["x"] + noise)
        return jnp.mean(jnp.square(pred - batch["y"]))

    loss, grads = eqx.filter_value_and_grad(loss_fn)(state.model)
    grad_norm = optax.tree.norm(grads)
    updates, opt_state = optimizer().update(grads, state.opt_state, eqx.filter(state.model, eqx.is_array))
    new = ToyState(eqx.apply_updates(state.model, updates), opt_state, state.step + 1, state.key)
    return new, {"loss": loss, "grad_norm": grad_norm, "finite": jnp.isfinite(grad_norm).astype(jnp.float32)}


def task(seed: int = 0, **kwargs: Any) -> TrainTask:
    """The toy task; ``kwargs`` replace its fields (e.g. ``step=`` a counting wrapper)."""
    return TrainTask(**{"init": lambda: init(seed), "step": step, **kwargs})


class ArrayData:
    """Batch ``i``: x ~ N(0, 1) [b, IN], y = x @ W [b, OUT] from a fixed W; batches >= ``nan_from`` hold a NaN,
    batches >= ``scale_from`` have y scaled by 1e6 (a finite but diverged loss)."""

    def __init__(self, batch_size: int = 8, *, nan_from: int | None = None, scale_from: int | None = None) -> None:
        self.batch_size, self.nan_from, self.scale_from = batch_size, nan_from, scale_from
        self.index = 0
        self.w = np.random.default_rng(7).normal(size=(IN, OUT)).astype(np.float32)

    def batch_at(self, index: int) -> dict[str, np.ndarray]:
        x = np.random.default_rng([1, index]).normal(size=(self.batch_size, IN)).astype(np.float32)
        y = x @ self.w
        if self.scale_from is not None and index >= self.scale_from:
            y = y * np.float32(1e6)
        if self.nan_from is not None and index >= self.nan_from:
            x[0, 0] = np.nan
        return {"x": x, "y": y}

    def __iter__(self) -> ArrayData:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        batch = self.batch_at(self.index)
        self.index += 1
        return batch

    def get_state(self) -> dict[str, int]:
        return {"index": self.index}

    def set_state(self, state: dict[str, int]) -> None:
        self.index = int(state["index"])


def arrays(state: Any) -> list[np.ndarray]:
    """Every array leaf as numpy (PRNG keys as their raw data), for exact comparisons."""
    out = []
    for x in jax.tree.leaves(eqx.filter(state, eqx.is_array)):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        out.append(np.asarray(x))
    return out

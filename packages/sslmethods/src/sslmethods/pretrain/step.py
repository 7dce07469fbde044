"""One training step: augment on device -> loss and grads -> adjust_grads -> update -> post_update -> method state
update.

``make_step_fn`` returns the pure function: what ``flopmeter.measure`` compiles on ``abstract_train_state`` shapes;
``make_train_step`` returns it jitted with ``eqx.filter_jit`` and the state donated (for scripts and tests that
step by hand). ``make_run_step_fn`` is the same step with the run's length as data (`sslmethods.pretrain.run_length`):
``step(state, batch, length)``, what the engine (``runloop.train``) compiles once and runs, so the budgets of one
method, backbone, batch and data shapes share one compiled program. The composition is exactly the
one in ``sslmethods.methods.method``'s docstring. The step returns the new parameters, optimizer and method
state (so XLA keeps the backward pass and the update when the step is measured) and scalar metrics. Dropping non-finite
updates is the engine's job (``runloop.LoopConfig(on_nonfinite="skip")``), from the ``finite`` metric returned here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float

from ..methods.method import AbstractMethod, Batch
from .optim import OptimConfig, learning_rate_schedule
from .run_length import RunLength
from .train_state import TrainState, method_optimizer

STEP_METRICS = ("grad_norm", "param_norm", "finite", "lr")
"""The metrics the step adds to ``loss`` and the method's own (about the update, not the data)."""

StepFn = Callable[[TrainState, Batch], tuple[TrainState, dict[str, Float[Array, ""]]]]
RunStepFn = Callable[[TrainState, Batch, RunLength], tuple[TrainState, dict[str, Float[Array, ""]]]]


def _global_norm(tree: Any) -> Float[Array, ""]:
    leaves = [jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree.leaves(tree)]
    return jnp.sqrt(sum(leaves, jnp.float32(0.0)))


def make_step_fn(
    method: AbstractMethod,
    optimizer: optax.GradientTransformation,
    *,
    lr_schedule: optax.Schedule | None = None,
    state_sharding: Any = None,
    batch_sharding: Any = None,
) -> StepFn:
    """The un-jitted step ``(state, batch) -> (new_state, metrics)``.

    Randomness: ``k_aug, k_loss = split(fold_in(state.key, state.step))``. Metrics: ``loss``, ``grad_norm``
    (global norm after ``adjust_grads``, before clipping), ``param_norm`` (after the update), ``finite`` (1.0 when
    loss and gradients are finite), ``lr`` (when ``lr_schedule`` is given: the rate used by this update) and the
    method's ``aux["metrics"]``. ``state_sharding`` / ``batch_sharding`` (pytrees of shardings matching
    ``eqx.filter(state, eqx.is_array)`` / the batch) pin the layouts inside the jitted program.
    """

    def step_fn(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, Float[Array, ""]]]:
        if batch_sharding is not None:
            batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
        step = state.step
        k_aug, k_loss = jax.random.split(jax.random.fold_in(state.key, step))
        views = method.views(batch, step=step, key=k_aug)
        p, static = eqx.partition(state.trainable, eqx.is_inexact_array)

        def loss_fn(p_: Any) -> tuple[Float[Array, ""], dict[str, Any]]:
            return method.loss(eqx.combine(p_, static), state.method_state, views, step=step, key=k_loss)

        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(p)
        grads = method.adjust_grads(state.trainable, grads, step=step)
        grad_norm = _global_norm(grads)
        updates, opt_state = optimizer.update(grads, state.opt_state, p)
        trainable = method.post_update(eqx.combine(optax.apply_updates(p, updates), static), step=step)
        new_p = eqx.filter(trainable, eqx.is_inexact_array)
        method_state = method.update_state(trainable, state.method_state, aux, step=step)
        new_state = TrainState(trainable, opt_state, method_state, step + 1, state.key)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        if state_sharding is not None:
            dynamic, static_state = eqx.partition(new_state, eqx.is_array)
            new_state = eqx.combine(jax.lax.with_sharding_constraint(dynamic, state_sharding), static_state)
        metrics = {
            "loss": loss.astype(jnp.float32),
            "grad_norm": grad_norm,
            "param_norm": _global_norm(new_p),
            "finite": finite.astype(jnp.float32),
        }
        if lr_schedule is not None:
            metrics["lr"] = jnp.asarray(lr_schedule(step), jnp.float32)
        for name, value in dict(aux.get("metrics", {})).items():
            metrics[name] = jnp.asarray(value).astype(jnp.float32)
        return new_state, metrics

    return step_fn


def make_run_step_fn(
    method: AbstractMethod,
    optim_cfg: OptimConfig,
    *,
    state_sharding: Any = None,
    batch_sharding: Any = None,
) -> RunStepFn:
    """The un-jitted step with the run's length as data: ``(state, batch, length) -> (new_state, metrics)``.

    ``length`` (`run_length.run_length(optim_cfg, steps)`) is what every schedule reads: the method's
    (``method.with_run_length``), the learning rate and weight decay of the optimizer built from ``optim_cfg``
    (`train_state.method_optimizer`). Otherwise exactly `make_step_fn`'s step (with the ``lr`` metric), with the
    same values as ``make_step_fn(method, method_optimizer(method, optim_cfg, steps), ...)`` for a method built
    with ``total_steps=steps``; the optimizer state is the same pytree (built by ``init_train_state`` with the
    optimizer of any length).
    """

    def step_fn(state: TrainState, batch: Batch, length: RunLength) -> tuple[TrainState, dict[str, Float[Array, ""]]]:
        fitted = method.with_run_length(length.total_steps)
        return make_step_fn(fitted, method_optimizer(fitted, optim_cfg, length),
                            lr_schedule=learning_rate_schedule(optim_cfg, length), state_sharding=state_sharding,
                            batch_sharding=batch_sharding)(state, batch)

    return step_fn


def make_train_step(
    method: AbstractMethod,
    optimizer: optax.GradientTransformation,
    *,
    lr_schedule: optax.Schedule | None = None,
    state_sharding: Any = None,
    batch_sharding: Any = None,
) -> StepFn:
    """``make_step_fn`` jitted with ``eqx.filter_jit``; the state (and batch) buffers are donated, so the input
    state must not be used after the call."""
    fn = make_step_fn(
        method,
        optimizer,
        lr_schedule=lr_schedule,
        state_sharding=state_sharding,
        batch_sharding=batch_sharding,
    )
    return eqx.filter_jit(fn, donate="all")

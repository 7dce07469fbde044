"""One pre-training step: a method's hooks composed by the engine's step (`runloop.make_step_fn`): augment on
device (``method.views``) -> loss and grads -> ``adjust_grads`` -> update -> ``post_update`` -> method state update
(``update_state``).

``make_method_step`` returns the pure function: what `runloop.measure_step` compiles on
``abstract_pretrain_state`` shapes; ``make_train_step`` returns it jitted with ``eqx.filter_jit`` and the state
donated (for scripts and tests that step by hand). ``make_run_step_fn`` is the same step with the run's length as
data (`sslmethods.pretrain.run_length`): ``step(state, batch, length)``, what the engine (``runloop.train``)
compiles once and runs, so the budgets of one method, backbone, batch and data shapes share one compiled program.
The composition is exactly the one in ``sslmethods.methods.method``'s docstring. The step returns the new
parameters, optimizer and method state (so XLA keeps the backward pass and the update when the step is measured)
and scalar metrics. Dropping non-finite updates is the engine's job (``runloop.LoopConfig(on_nonfinite="skip")``),
from the ``finite`` metric returned here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import optax
from jaxtyping import Array, Float
from runloop import TrainState, make_step_fn

from ..methods.method import AbstractMethod, Batch
from .optim import OptimConfig, learning_rate_schedule
from .run_length import RunLength
from .train_state import method_optimizer

STEP_METRICS = ("grad_norm", "param_norm", "finite", "lr")
"""The metrics the step adds to ``loss`` and the method's own (about the update, not the data)."""

StepFn = Callable[[TrainState, Batch], tuple[TrainState, dict[str, Float[Array, ""]]]]
RunStepFn = Callable[[TrainState, Batch, RunLength], tuple[TrainState, dict[str, Float[Array, ""]]]]


def make_method_step(
    method: AbstractMethod,
    optimizer: optax.GradientTransformation,
    *,
    lr_schedule: optax.Schedule | None = None,
    state_sharding: Any = None,
    batch_sharding: Any = None,
) -> StepFn:
    """The un-jitted step ``(state, batch) -> (new_state, metrics)``: `runloop.make_step_fn` with the method's
    loss and hooks, parameters = the floating-point arrays of ``state.model``.

    Randomness: ``k_aug, k_loss = split(fold_in(state.key, state.step))``. Metrics: ``loss``, ``grad_norm``
    (global norm after ``adjust_grads``, before clipping), ``param_norm`` (after the update), ``finite`` (1.0 when
    loss and gradients are finite), ``lr`` (when ``lr_schedule`` is given: the rate used by this update) and the
    method's ``aux["metrics"]``. ``state_sharding`` / ``batch_sharding`` (pytrees of shardings matching
    ``eqx.filter(state, eqx.is_array)`` / the batch) pin the layouts inside the jitted program.
    """
    return make_step_fn(method.loss, optimizer, params_filter=eqx.is_inexact_array, augment=method.views,
                        adjust_grads=method.adjust_grads, post_update=method.post_update,
                        update_extra=method.update_state, lr_schedule=lr_schedule, param_norm=True,
                        state_sharding=state_sharding, batch_sharding=batch_sharding)


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
    (`train_state.method_optimizer`). Otherwise exactly `make_method_step`'s step (with the ``lr`` metric), with the
    same values as ``make_method_step(method, method_optimizer(method, optim_cfg, steps), ...)`` for a method built
    with ``total_steps=steps``; the optimizer state is the same pytree (built by ``init_pretrain_state`` with the
    optimizer of any length).
    """

    def step_fn(state: TrainState, batch: Batch, length: RunLength) -> tuple[TrainState, dict[str, Float[Array, ""]]]:
        fitted = method.with_run_length(length.total_steps)
        return make_method_step(fitted, method_optimizer(fitted, optim_cfg, length),
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
    """``make_method_step`` jitted with ``eqx.filter_jit``; the state (and batch) buffers are donated, so the input
    state must not be used after the call."""
    fn = make_method_step(
        method,
        optimizer,
        lr_schedule=lr_schedule,
        state_sharding=state_sharding,
        batch_sharding=batch_sharding,
    )
    return eqx.filter_jit(fn, donate="all")

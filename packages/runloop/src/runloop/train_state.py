"""The one training state and training step every flopwise run uses (pre-training, segmentation, detection).

``TrainState(model, opt_state, extra, step, key)`` is an explicit pytree: the trained module, the optax state
over its parameters, the owner's non-trainable state (a method's EMA teacher or centre; ``None`` for a task
without one), the int32 count of applied updates and the run's root key (never split in place). ``None`` adds
no leaf, so a state without ``extra`` flattens to ``model, opt_state, step, key``: the leaf order checkpoints
store (`runloop.Checkpointer`).

``make_step_fn(loss_fn, optimizer, ...)`` turns a loss into the pure step ``(state, batch) -> (state,
metrics)`` the engine compiles once (`runloop.train`). The step's randomness is ``fold_in(key, step)`` (with an
``augment`` hook: ``k_aug, k_loss = split(fold_in(key, step))``), so a resumed run draws the same crops, masks
and dropout. The owner brings only its loss and, where it needs them, the hooks of the composition::

    fold_in(key, step) -> [augment] -> loss and grads -> adjust_grads -> optimizer -> post_update -> update_extra

``measure_step`` is the one place a step's FLOPs are counted without a run (``flopmeter`` on abstract inputs);
a run reads them from the executable it compiled (`runloop.step_program`). docs/design.md section 6 says why a
measured step returns its new state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import equinox as eqx
import flopmeter
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from .optim.sam import sharded_grad_fn, split_batch

__all__ = ["COUNTS", "TrainState", "count_step", "global_norm", "init_train_state", "make_step_fn", "measure_step"]

COUNTS = ("compiled", "lowered")
"""How `count_step` counts: the compiled program (XLA's figures) or the lowered one (no compile)."""


class TrainState(eqx.Module):
    """``model``: the trained module (arrays + static structure); ``opt_state``: optax state over
    ``eqx.filter(model, params_filter)``; ``extra``: the owner's non-trainable state (any pytree, ``None`` for
    none); ``step``: int32 count of applied optimizer updates; ``key``: the run's root key."""

    model: Any
    opt_state: PyTree
    extra: Any
    step: Int[Array, ""]
    key: PRNGKeyArray


Metrics = dict[str, Float[Array, ""]]
LossFn = Callable[..., tuple[Float[Array, ""], Any]]
"""``loss_fn(model, extra, batch, *, step, key) -> (loss, aux)``; ``aux["metrics"]`` (when ``aux`` is a dict
holding it) are reported beside the step's own."""
StepFn = Callable[[TrainState, Any], tuple[TrainState, Metrics]]


def init_train_state(model: Any, optimizer: optax.GradientTransformation, *, key: PRNGKeyArray, extra: Any = None,
                     params_filter: Callable[[Any], bool] = eqx.is_inexact_array) -> TrainState:
    """Step 0: the optimizer initialised on ``eqx.filter(model, params_filter)`` (the same filter the step
    optimises). A leaf that shares a buffer with an earlier one (an EMA teacher built as a copy of the student)
    is copied, because a donated state must not hold one buffer twice."""
    state = TrainState(model, optimizer.init(eqx.filter(model, params_filter)), extra, jnp.zeros((), jnp.int32), key)
    return _unalias(state)


def _unalias(state: TrainState) -> TrainState:
    seen: set[int] = set()

    def fresh(x: Any) -> Any:
        if not isinstance(x, jax.Array) or isinstance(x, jax.core.Tracer):
            return x
        if id(x) in seen:
            return jnp.copy(x)
        seen.add(id(x))
        return x

    return jax.tree.map(fresh, state)


def global_norm(tree: PyTree) -> Float[Array, ""]:
    """sqrt of the sum of squares of every leaf, accumulated in float32 leaf by leaf (in tree order)."""
    leaves = [jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree.leaves(tree)]
    return jnp.sqrt(sum(leaves, jnp.float32(0.0)))


def _apply_updates(params: PyTree, updates: PyTree) -> PyTree:
    # optax.apply_updates' arithmetic (cast back to the parameter's dtype), leaving a leaf without update (an
    # integer array under params_filter=eqx.is_array) as it is.
    return jax.tree.map(lambda u, p: p if u is None else jnp.asarray(p + u).astype(jnp.asarray(p).dtype),
                        updates, params, is_leaf=lambda x: x is None)


def _identity_grads(model: Any, grads: PyTree, *, step: Array) -> PyTree:
    return grads


def _identity_model(model: Any, *, step: Array) -> Any:
    return model


def _keep_extra(model: Any, extra: Any, aux: Any, *, step: Array) -> Any:
    return extra


def make_step_fn(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    *,
    params_filter: Callable[[Any], bool] = eqx.is_inexact_array,
    augment: Callable[..., Any] | None = None,
    adjust_grads: Callable[..., PyTree] = _identity_grads,
    post_update: Callable[..., Any] = _identity_model,
    update_extra: Callable[..., Any] = _keep_extra,
    lr_schedule: optax.Schedule | None = None,
    param_norm: bool = False,
    state_sharding: Any = None,
    batch_sharding: Any = None,
    grad_shards: int | None = None,
) -> StepFn:
    """The pure step ``(state, batch) -> (state, metrics)`` of ``loss_fn`` optimised by ``optimizer``.

    ``params_filter``: which leaves of ``state.model`` are optimised (as in `init_train_state`); gradients are
    taken of their floating-point ones. Hooks (each defaults to identity): ``augment(batch, *, step, key)`` on
    device before the loss; ``adjust_grads(model, grads, *, step)`` before the optimizer;
    ``post_update(model, *, step)`` after it; ``update_extra(model, extra, aux, *, step)`` the new ``extra`` from
    the updated model. An optimizer that takes extra arguments (``optax.GradientTransformationExtraArgs``, every
    ``optax.chain``) also gets ``grad_fn(params) -> grads`` of the same batch and keys, which SAM needs
    (`runloop.optim.sam`); others ignore it.

    ``grad_shards=K`` (default None: one loss over the whole batch): the batch is cut into K equal, contiguous
    slices (`runloop.optim.sam.split_batch`, what K data-parallel devices each hold) and each slice is its own
    loss, with key ``fold_in(key, k)`` (K=1: the step's key, so K=1 is the whole-batch step exactly); the step's
    loss, gradient and ``aux`` are their means over the slices (as a ``pmean`` over devices gives). An optimizer
    taking extra arguments then also gets ``shard_grad_fn`` (stacked params -> each slice's gradient at its own
    entry) and ``shard_grads`` (each slice's gradient at the params): per-device SAM
    (``sam(per_device=True)``) needs them. ``adjust_grads`` acts on the mean gradient, not on the slices'.

    Metrics: ``loss``, ``grad_norm`` (`global_norm` after ``adjust_grads``, before the optimizer), ``finite`` (1.0
    when loss and gradients are finite: the engine's NaN guard reads it), ``lr`` (with ``lr_schedule``: the rate
    of this update), ``param_norm`` (with ``param_norm=True``: of the model's floating-point arrays after the
    update) and ``aux["metrics"]`` (float32).
    ``state_sharding`` / ``batch_sharding`` (shardings matching ``eqx.filter(state, eqx.is_array)`` / the batch)
    pin the layouts inside the compiled program.
    """
    if grad_shards is not None and (isinstance(grad_shards, bool) or not isinstance(grad_shards, int)
                                    or grad_shards < 1):
        raise ValueError(f"grad_shards={grad_shards!r}: expected None or an int >= 1")
    extra_args = isinstance(optimizer, optax.GradientTransformationExtraArgs)

    def step_fn(state: TrainState, batch: Any) -> tuple[TrainState, Metrics]:
        if batch_sharding is not None:
            batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
        step = state.step
        key = jax.random.fold_in(state.key, step)
        if augment is not None:
            k_aug, key = jax.random.split(key)
            batch = augment(batch, step=step, key=k_aug)
        params, static = eqx.partition(state.model, params_filter)

        if grad_shards is None:
            def loss_of(p: PyTree) -> tuple[Float[Array, ""], Any]:
                return loss_fn(eqx.combine(p, static), state.extra, batch, step=step, key=key)

            def grad_fn(p: PyTree) -> PyTree:
                return eqx.filter_grad(loss_of, has_aux=True)(p)[0]

            (loss, aux), grads = eqx.filter_value_and_grad(loss_of, has_aux=True)(params)
            options = {"grad_fn": grad_fn}
        else:
            loss, aux, grads, options = _sharded_loss_and_grads(loss_fn, params, static, state.extra, batch,
                                                                grad_shards, step=step, key=key)
        grads = adjust_grads(state.model, grads, step=step)
        grad_norm = global_norm(grads)
        options = options if extra_args else {}
        updates, opt_state = optimizer.update(grads, state.opt_state, params, **options)
        model = post_update(eqx.combine(_apply_updates(params, updates), static), step=step)
        extra = update_extra(model, state.extra, aux, step=step)
        new_state = TrainState(model, opt_state, extra, step + 1, state.key)
        if state_sharding is not None:
            dynamic, static_state = eqx.partition(new_state, eqx.is_array)
            new_state = eqx.combine(jax.lax.with_sharding_constraint(dynamic, state_sharding), static_state)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        metrics = {"loss": jnp.asarray(loss).astype(jnp.float32), "grad_norm": grad_norm,
                   "finite": finite.astype(jnp.float32)}
        if param_norm:
            metrics["param_norm"] = global_norm(eqx.filter(model, eqx.is_inexact_array))
        if lr_schedule is not None:
            metrics["lr"] = jnp.asarray(lr_schedule(step), jnp.float32)
        if isinstance(aux, dict):
            for name, value in dict(aux.get("metrics", {})).items():
                metrics[name] = jnp.asarray(value).astype(jnp.float32)
        return new_state, metrics

    return step_fn


def _shard_mean(tree: PyTree) -> PyTree:
    # Floating leaves: the mean over the slices (a pmean); others (integer counts, None) from the first slice.
    return jax.tree.map(lambda x: jnp.mean(x, axis=0) if eqx.is_inexact_array(x) else x[0], tree)


def _sharded_loss_and_grads(loss_fn: LossFn, params: PyTree, static: Any, extra: Any, batch: Any, shards: int, *,
                            step: Array, key: PRNGKeyArray) -> tuple[Array, Any, PyTree, dict[str, Any]]:
    """`make_step_fn`'s ``grad_shards`` form: mean loss, aux and gradient over ``shards`` slices of ``batch``, and
    the optimizer's extra arguments (``grad_fn``, ``shard_grad_fn``, ``shard_grads``)."""
    parts, indices = split_batch(batch, shards), jnp.arange(shards)

    def shard_loss(p: PyTree, part: Any, index: Array) -> tuple[Float[Array, ""], Any]:
        shard_key = key if shards == 1 else jax.random.fold_in(key, index)
        return loss_fn(eqx.combine(p, static), extra, part, step=step, key=shard_key)

    def grads_at(p: PyTree) -> PyTree:  # every slice's gradient at the same p
        return jax.vmap(eqx.filter_grad(shard_loss, has_aux=True), in_axes=(None, 0, 0))(p, parts, indices)[0]

    (losses, auxes), shard_grads = jax.vmap(eqx.filter_value_and_grad(shard_loss, has_aux=True),
                                            in_axes=(None, 0, 0))(params, parts, indices)
    options = {"grad_fn": lambda p: _shard_mean(grads_at(p)), "shard_grads": shard_grads,
               "shard_grad_fn": sharded_grad_fn(lambda p, part, index: shard_loss(p, part, index)[0], batch, shards)}
    return jnp.mean(losses), _shard_mean(auxes), _shard_mean(shard_grads), options


def count_step(lowered: jax.stages.Lowered, *, count: str = "compiled", lower_seconds: float = 0.0,
               hlo_text: str | None = None) -> flopmeter.Cost:
    """`flopmeter.Cost` of a step already lowered on abstract inputs (``flopmeter.lower_abstract``; for a caller
    that keys a cache on the lowered text): ``count="compiled"`` compiles it and reads the compiled program
    (`flopmeter.cost_from_compiled`; ``compile_seconds`` = ``lower_seconds`` + the compile), ``"lowered"``
    counts the lowered program without compiling (`flopmeter.cost_from_lowered`, from ``hlo_text`` when given)."""
    if count not in COUNTS:
        raise ValueError(f"count={count!r}; expected one of {COUNTS}")
    if count == "lowered":
        return flopmeter.cost_from_lowered(lowered, lower_seconds=lower_seconds, hlo_text=hlo_text)
    start = time.perf_counter()
    compiled = lowered.compile()
    return flopmeter.cost_from_compiled(compiled, compile_seconds=lower_seconds + time.perf_counter() - start)


def measure_step(step: Callable[..., Any], state: Any, batch: Any, *args: Any,
                 count: str = "compiled") -> flopmeter.Cost:
    """FLOPs (and the rest of `flopmeter.Cost`) of one step ``step(state, batch, *args)`` on abstract inputs
    (``jax.ShapeDtypeStruct`` leaves; nothing is allocated or run): `flopmeter.measure` of the compiled step, or
    with ``count="lowered"`` `flopmeter.measure_lowered` (no compile). The step must return its new state, or
    XLA drops the backward pass and the update as dead code (docs/design.md section 6)."""
    if count not in COUNTS:
        raise ValueError(f"count={count!r}; expected one of {COUNTS}")
    measure = flopmeter.measure if count == "compiled" else flopmeter.measure_lowered
    return measure(step, state, batch, *args)

"""The one train state and step: a hand-written loss against float64 numpy re-derivations of SGD (plain, with every
hook, with SAM), the step's keys, checkpoints written in the owners' earlier state layouts restoring into
`TrainState`, and `measure_step` against a closed-form count."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jaxtyping import Array, Int, PRNGKeyArray
from runloop import Checkpointer, TrainState, init_train_state, make_step_fn, measure_step
from runloop.optim.sam import sam

LR = 0.1


class Affine(eqx.Module):
    w: Array
    b: Array
    index: Array  # an integer array: never optimised


def _model(seed: int = 0) -> Affine:
    rng = np.random.default_rng(seed)
    return Affine(jnp.asarray(rng.standard_normal((3, 2)), jnp.float32), jnp.asarray(rng.standard_normal(2),
                  jnp.float32), jnp.arange(2, dtype=jnp.int32))


def _batch(seed: int = 1) -> dict[str, Array]:
    rng = np.random.default_rng(seed)
    return {"x": jnp.asarray(rng.standard_normal((5, 3)), jnp.float32),
            "y": jnp.asarray(rng.standard_normal((5, 2)), jnp.float32)}


def _batch_of(n: int, seed: int = 2) -> dict[str, Array]:
    rng = np.random.default_rng(seed)
    return {"x": jnp.asarray(rng.standard_normal((n, 3)), jnp.float32),
            "y": jnp.asarray(rng.standard_normal((n, 2)), jnp.float32)}


def _mse(model: Affine, extra: Any, batch: dict[str, Array], *, step: Array, key: PRNGKeyArray) -> tuple[Array, dict]:
    pred = batch["x"] @ model.w + model.b
    return jnp.mean(jnp.square(pred - batch["y"])), {"metrics": {"bias_sum": jnp.sum(model.b)}}


def _np_grads(w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Loss and gradients of mean((x w + b - y)^2) in float64, by hand."""
    r = x @ w + b - y
    n = r.size
    return float(np.mean(r**2)), 2.0 * x.T @ r / n, 2.0 * r.sum(axis=0) / n


def _f64(x: Array) -> np.ndarray:
    return np.asarray(x, np.float64)


@pytest.mark.parametrize("params_filter", [eqx.is_inexact_array, eqx.is_array])
def test_one_sgd_step_equals_a_numpy_rederivation(params_filter):
    model, batch = _model(), _batch()
    tx = optax.sgd(LR)
    state = init_train_state(model, tx, key=jax.random.key(0), params_filter=params_filter)
    new, metrics = jax.jit(make_step_fn(_mse, tx, params_filter=params_filter, param_norm=True,
                                        lr_schedule=optax.constant_schedule(LR)))(state, batch)

    w, b, x, y = _f64(model.w), _f64(model.b), _f64(batch["x"]), _f64(batch["y"])
    loss, gw, gb = _np_grads(w, b, x, y)
    w1, b1 = w - LR * gw, b - LR * gb
    np.testing.assert_allclose(_f64(new.model.w), w1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_f64(new.model.b), b1, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(new.model.index), [0, 1])  # integer leaves are left as they are
    np.testing.assert_allclose(float(metrics["loss"]), loss, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["grad_norm"]), np.sqrt(np.sum(gw**2) + np.sum(gb**2)), rtol=1e-5)
    np.testing.assert_allclose(float(metrics["param_norm"]), np.sqrt(np.sum(w1**2) + np.sum(b1**2)), rtol=1e-5)
    np.testing.assert_allclose(float(metrics["bias_sum"]), b.sum(), rtol=1e-5)  # aux["metrics"], before the update
    assert float(metrics["finite"]) == 1.0 and float(metrics["lr"]) == pytest.approx(LR)
    assert int(new.step) == 1 and new.extra is None
    assert jnp.array_equal(jax.random.key_data(new.key), jax.random.key_data(state.key))


def test_hooks_compose_in_order_against_numpy():
    """augment -> loss -> adjust_grads -> SGD -> post_update -> update_extra, with an EMA of w as ``extra``."""
    model, batch = _model(), _batch()
    tx = optax.sgd(LR)
    step_fn = make_step_fn(
        _mse, tx,
        augment=lambda batch, *, step, key: {**batch, "x": 2.0 * batch["x"]},
        adjust_grads=lambda model, grads, *, step: jax.tree.map(lambda g: 0.5 * g, grads),
        post_update=lambda model, *, step: eqx.tree_at(lambda m: m.b, model, jnp.clip(model.b, -0.1, 0.1)),
        update_extra=lambda model, extra, aux, *, step: {"ema": 0.9 * extra["ema"] + 0.1 * model.w},
    )
    state = init_train_state(model, tx, key=jax.random.key(0), extra={"ema": jnp.zeros((3, 2), jnp.float32)})
    new, metrics = jax.jit(step_fn)(state, batch)

    w, b = _f64(model.w), _f64(model.b)
    _, gw, gb = _np_grads(w, b, 2.0 * _f64(batch["x"]), _f64(batch["y"]))
    w1, b1 = w - LR * 0.5 * gw, np.clip(b - LR * 0.5 * gb, -0.1, 0.1)
    np.testing.assert_allclose(_f64(new.model.w), w1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_f64(new.model.b), b1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_f64(new.extra["ema"]), 0.1 * w1, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(float(metrics["grad_norm"]), 0.5 * np.sqrt(np.sum(gw**2) + np.sum(gb**2)), rtol=1e-5)


def test_keys_are_fold_in_of_the_step_and_split_with_augment():
    seen = {}

    def loss(model, extra, batch, *, step, key):
        seen["loss"] = jax.random.key_data(key)
        return jnp.sum(model.w) * 0.0, {}

    def augment(batch, *, step, key):
        seen["augment"] = jax.random.key_data(key)
        return batch

    root = jax.random.key(7)
    state = eqx.tree_at(lambda s: s.step, init_train_state(_model(), optax.sgd(LR), key=root), jnp.int32(5))
    make_step_fn(loss, optax.sgd(LR))(state, _batch())
    np.testing.assert_array_equal(seen["loss"], jax.random.key_data(jax.random.fold_in(root, 5)))
    make_step_fn(loss, optax.sgd(LR), augment=augment)(state, _batch())
    k_aug, k_loss = jax.random.split(jax.random.fold_in(root, 5))
    np.testing.assert_array_equal(seen["augment"], jax.random.key_data(k_aug))
    np.testing.assert_array_equal(seen["loss"], jax.random.key_data(k_loss))


def test_sam_gets_the_gradient_at_the_perturbed_point():
    """An optimizer that takes extra arguments gets ``grad_fn``: SAM then steps along grad L(w + rho g/||g||)."""
    rho = 0.3
    model, batch = _model(), _batch()
    tx = optax.chain(sam(rho), optax.sgd(LR))
    new, _ = jax.jit(make_step_fn(_mse, tx))(init_train_state(model, tx, key=jax.random.key(0)), batch)

    w, b, x, y = _f64(model.w), _f64(model.b), _f64(batch["x"]), _f64(batch["y"])
    _, gw, gb = _np_grads(w, b, x, y)
    scale = rho / np.sqrt(np.sum(gw**2) + np.sum(gb**2))
    _, sw, sb = _np_grads(w + scale * gw, b + scale * gb, x, y)
    np.testing.assert_allclose(_f64(new.model.w), w - LR * sw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_f64(new.model.b), b - LR * sb, rtol=1e-5, atol=1e-6)


def _np_sam_grads(w, b, x, y, rho):
    _, gw, gb = _np_grads(w, b, x, y)
    scale = rho / np.sqrt(np.sum(gw**2) + np.sum(gb**2))
    return _np_grads(w + scale * gw, b + scale * gb, x, y)[1:]


@pytest.mark.parametrize("params_filter", [eqx.is_inexact_array, eqx.is_array])
@pytest.mark.parametrize("shards", [2, 3])
def test_per_shard_sam_step_equals_a_numpy_rederivation(shards, params_filter):
    """``grad_shards=K`` + ``sam(per_device=True)``: each slice k ascends along its own g_k to w + rho g_k/||g_k||,
    takes its own gradient there, and the step averages them (google-research/sam's per-device m-sharpness)."""
    rho, model, batch = 0.3, _model(), _batch_of(6)
    tx = optax.chain(sam(rho, per_device=True), optax.sgd(LR))
    step = make_step_fn(_mse, tx, params_filter=params_filter, grad_shards=shards)
    new, metrics = jax.jit(step)(init_train_state(model, tx, key=jax.random.key(0), params_filter=params_filter),
                                 batch)

    w, b, x, y = _f64(model.w), _f64(model.b), _f64(batch["x"]), _f64(batch["y"])
    per_shard = [_np_sam_grads(w, b, xk, yk, rho) for xk, yk in zip(np.split(x, shards), np.split(y, shards),
                                                                      strict=True)]
    sw, sb = (np.mean([g[i] for g in per_shard], axis=0) for i in range(2))
    np.testing.assert_allclose(_f64(new.model.w), w - LR * sw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_f64(new.model.b), b - LR * sb, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(metrics["loss"]), _np_grads(w, b, x, y)[0], rtol=1e-5)  # equal slices
    np.testing.assert_array_equal(np.asarray(new.model.index), np.arange(2))
    whole_w, _ = _np_sam_grads(w, b, x, y, rho)  # not the whole-batch perturbation: the slices' directions differ
    assert not np.allclose(sw, whole_w, rtol=1e-3)


def _masked_mse(model: Affine, extra: Any, batch: dict[str, Array], *, step: Array,
                key: PRNGKeyArray) -> tuple[Array, dict]:
    """MSE of a prediction under a dropout-like mask of the weights drawn from ``key``."""
    mask = jax.random.bernoulli(key, 0.7, model.w.shape).astype(jnp.float32)
    pred = batch["x"] @ (model.w * mask) + model.b
    return jnp.mean(jnp.square(pred - batch["y"])), {"metrics": {"n": jnp.float32(batch["x"].shape[0])}}


@pytest.mark.parametrize("per_device", [False, True])
def test_one_shard_is_the_whole_batch_sam_step(per_device):
    """K=1 is the whole-batch form exactly, keys included (the loss draws a mask from its key)."""
    model, batch = _model(), _batch_of(6)
    whole_tx = optax.chain(sam(0.3), optax.sgd(LR))
    state = init_train_state(model, whole_tx, key=jax.random.key(3))
    want, want_metrics = jax.jit(make_step_fn(_masked_mse, whole_tx))(state, batch)
    tx = optax.chain(sam(0.3, per_device=per_device), optax.sgd(LR))
    got, metrics = jax.jit(make_step_fn(_masked_mse, tx, grad_shards=1))(state, batch)
    for name in ("w", "b"):
        np.testing.assert_allclose(_f64(getattr(got.model, name)), _f64(getattr(want.model, name)), rtol=1e-6,
                                   atol=1e-7)
    assert float(metrics["loss"]) == pytest.approx(float(want_metrics["loss"]), rel=1e-6)


def test_shards_without_sam_average_the_slices_losses_with_their_own_keys():
    """Without SAM, ``grad_shards=2`` steps along the mean of the slices' gradients, slice k's mask drawn from
    ``fold_in(fold_in(key, step), k)``; aux metrics are the slices' means."""
    model, batch, root = _model(), _batch_of(6), jax.random.key(5)
    state = init_train_state(model, optax.sgd(LR), key=root)
    new, metrics = jax.jit(make_step_fn(_masked_mse, optax.sgd(LR), grad_shards=2))(state, batch)

    w, b = _f64(model.w), _f64(model.b)
    losses, gws, gbs = [], [], []
    for k, (xk, yk) in enumerate(zip(np.split(_f64(batch["x"]), 2), np.split(_f64(batch["y"]), 2), strict=True)):
        mask = np.asarray(jax.random.bernoulli(jax.random.fold_in(jax.random.fold_in(root, 0), k), 0.7, w.shape),
                          np.float64)
        loss, gw, gb = _np_grads(w * mask, b, xk, yk)
        losses.append(loss), gws.append(gw * mask), gbs.append(gb)
    assert not np.array_equal(gws[0] != 0, gws[1] != 0), "the two slices should draw different masks"
    np.testing.assert_allclose(_f64(new.model.w), w - LR * np.mean(gws, axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_f64(new.model.b), b - LR * np.mean(gbs, axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(metrics["loss"]), np.mean(losses), rtol=1e-5)
    assert float(metrics["n"]) == 3.0


def test_grad_shards_must_divide_the_batch():
    state = init_train_state(_model(), optax.sgd(LR), key=jax.random.key(0))
    with pytest.raises(ValueError, match="shards=4"):
        make_step_fn(_mse, optax.sgd(LR), grad_shards=4)(state, _batch_of(6))
    with pytest.raises(ValueError, match="grad_shards=0"):
        make_step_fn(_mse, optax.sgd(LR), grad_shards=0)


def test_nonfinite_loss_is_reported():
    batch = _batch()
    batch["y"] = batch["y"].at[0, 0].set(jnp.nan)
    state = init_train_state(_model(), optax.sgd(LR), key=jax.random.key(0))
    _, metrics = make_step_fn(_mse, optax.sgd(LR))(state, batch)
    assert float(metrics["finite"]) == 0.0


# The owners' state classes as they were before `TrainState` (same field order), to write checkpoints the way
# earlier runs did.
class _PretrainStateBefore(eqx.Module):
    trainable: Any
    opt_state: Any
    method_state: Any
    step: Int[Array, ""]
    key: PRNGKeyArray


class _FinetuneStateBefore(eqx.Module):
    model: Any
    opt_state: Any
    step: Int[Array, ""]
    key: PRNGKeyArray


def _random_like(tree: Any, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda x: jnp.asarray(rng.standard_normal(x.shape), x.dtype)
                        if eqx.is_inexact_array(x) else x, tree)


def _array_leaves(tree: Any) -> list[np.ndarray]:
    return [np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x)
            for x in jax.tree.leaves(eqx.filter(tree, eqx.is_array))]


@pytest.mark.parametrize("layout", ["pretrain", "finetune"])
def test_checkpoints_of_the_earlier_layouts_restore_into_train_state(tmp_path, layout):
    tx = optax.adamw(1e-3)
    model = _model(3)
    if layout == "pretrain":  # trainable, opt_state, method_state (an EMA teacher), step, key
        old = _PretrainStateBefore(model, _random_like(tx.init(eqx.filter(model, eqx.is_inexact_array)), 4),
                                   {"teacher": _random_like(model, 5)}, jnp.int32(12), jax.random.key(9))
        template = init_train_state(_model(0), tx, key=jax.random.key(0), extra={"teacher": _model(1)})
    else:  # model, opt_state, step, key (no method state)
        old = _FinetuneStateBefore(model, _random_like(tx.init(eqx.filter(model, eqx.is_array)), 4),
                                   jnp.int32(12), jax.random.key(9))
        template = init_train_state(_model(0), tx, key=jax.random.key(0), params_filter=eqx.is_array)
    with Checkpointer(tmp_path) as ckpt:
        ckpt.save(12, old, metadata={"good": True})
    with Checkpointer(tmp_path) as ckpt:
        restored = ckpt.restore(template)
    assert restored.step == 12 and isinstance(restored.state, TrainState)
    before, after = _array_leaves(old), _array_leaves(restored.state)
    assert len(before) == len(after) == len(_array_leaves(template))
    for a, b in zip(before, after, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.asarray(restored.state.model.w), np.asarray(model.w))
    assert int(restored.state.step) == 12


@pytest.mark.parametrize("count", ["compiled", "lowered"])
def test_measure_step_counts_a_matmul_step(count):
    def step(state, batch):
        return state, {"loss": jnp.sum(batch @ state)}

    cost = measure_step(step, jax.ShapeDtypeStruct((32, 16), jnp.float32),
                        jax.ShapeDtypeStruct((64, 32), jnp.float32), count=count)
    matmul = 2 * 64 * 32 * 16
    assert matmul <= cost.flops <= matmul + 64 * 16  # the matmul plus at most the sum's additions
    with pytest.raises(ValueError, match="count="):
        measure_step(step, jnp.zeros((2, 2)), jnp.zeros((2, 2)), count="exact")

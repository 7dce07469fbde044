"""The jitted training step: composition, randomness, metrics, NaN skipping, donation, abstract measurement."""

import sys
from pathlib import Path

import equinox as eqx
import flopmeter
import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).parent))
from _engine_toys import SyntheticData, ToyClassifier, ToyTeacher  # noqa: E402
from sslmethods.pretrain.optim import OptimConfig, learning_rate_schedule, make_optimizer  # noqa: E402
from sslmethods.pretrain.step import make_method_step, make_train_step  # noqa: E402
from sslmethods.pretrain.train_state import abstract_pretrain_state, decay_mask, init_pretrain_state  # noqa: E402


class FrozenHeadToy(ToyClassifier):
    """Zeroes the head's gradients for the first 2 steps (the shape of DINO's frozen last layer)."""

    def adjust_grads(self, trainable, grads, *, step):
        scale = (step >= 2).astype(jnp.float32)
        return eqx.tree_at(lambda g: (g.head.weight, g.head.bias), grads,
                           (grads.head.weight * scale, grads.head.bias * scale))


def _setup(method, cfg=None, total=10):
    cfg = cfg or OptimConfig(lr=1e-2, weight_decay=0.1, warmup_steps=2)
    trainable, _ = method.init(key=jax.random.key(0))
    tx = make_optimizer(cfg, total, decay_mask(method, trainable))
    return tx, learning_rate_schedule(cfg, total), init_pretrain_state(method, tx, key=jax.random.key(1))


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array))]


def test_step_matches_hand_composition():
    method = ToyTeacher()
    tx, lr, state = _setup(method)
    batch = {k: jnp.asarray(v) for k, v in SyntheticData(8).batch_at(0).items()}
    new, metrics = jax.jit(make_method_step(method, tx, lr_schedule=lr))(state, batch)

    @jax.jit
    def by_hand(state, batch):  # the composition spelled out, keys from fold_in(root, step)
        k_aug, k_loss = jax.random.split(jax.random.fold_in(state.key, 0))
        views = method.views(batch, step=jnp.int32(0), key=k_aug)
        p, static = eqx.partition(state.model, eqx.is_inexact_array)
        (loss, aux), g = jax.value_and_grad(
            lambda q: method.loss(eqx.combine(q, static), state.extra, views, step=jnp.int32(0), key=k_loss),
            has_aux=True)(p)
        with jax.numpy_dtype_promotion("standard"):
            updates, _ = tx.update(g, state.opt_state, p)
        p_new = optax.apply_updates(p, updates)
        teacher = method.update_state(eqx.combine(p_new, static), state.extra, aux, step=jnp.int32(0))
        return loss, g, p_new, teacher

    loss, g, p_new, teacher = by_hand(state, batch)
    for a, b in zip(_leaves(new.model), _leaves(p_new), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for a, b in zip(_leaves(new.extra), _leaves(teacher), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert int(new.step) == 1
    np.testing.assert_allclose(float(metrics["loss"]), float(loss), rtol=1e-6)
    grad_norm = np.sqrt(sum(np.sum(np.asarray(x, np.float64) ** 2) for x in jax.tree.leaves(g)))
    np.testing.assert_allclose(float(metrics["grad_norm"]), grad_norm, rtol=1e-5)
    param_norm = np.sqrt(sum(np.sum(x.astype(np.float64) ** 2) for x in _leaves(p_new)))
    np.testing.assert_allclose(float(metrics["param_norm"]), param_norm, rtol=1e-5)
    assert float(metrics["lr"]) == 0.0  # warmup from start_lr=0 at step 0
    assert "accuracy" in metrics and float(metrics["finite"]) == 1.0


def test_randomness_is_a_function_of_the_step():
    method = ToyClassifier(noise=0.5)
    tx, _, state = _setup(method)
    batch = {k: jnp.asarray(v) for k, v in SyntheticData(8).batch_at(0).items()}
    fn = jax.jit(make_method_step(method, tx))
    _, m1 = fn(state, batch)
    _, m2 = fn(state, batch)
    assert float(m1["loss"]) == float(m2["loss"])  # same (state, step, batch) -> same draw
    _, m3 = fn(eqx.tree_at(lambda s: s.step, state, jnp.int32(5)), batch)
    assert float(m3["loss"]) != float(m1["loss"])  # another step -> another fold_in key


def test_adjust_grads_hook_is_applied():
    method = FrozenHeadToy()
    tx, _, state = _setup(method, OptimConfig(lr=1e-2, warmup_steps=0))
    head0 = np.asarray(state.model.head.weight)
    hidden0 = np.asarray(state.model.hidden.weight)
    step = make_train_step(method, tx)
    data = SyntheticData(8)
    for _ in range(2):
        state, _ = step(state, next(data))
    np.testing.assert_array_equal(np.asarray(state.model.head.weight), head0)
    assert not np.array_equal(np.asarray(state.model.hidden.weight), hidden0)
    state, _ = step(state, next(data))
    assert not np.array_equal(np.asarray(state.model.head.weight), head0)


def test_nonfinite_step_is_flagged():
    # the step reports it; dropping the update is the engine's job (runloop: on_nonfinite="skip")
    method = ToyTeacher()
    tx, _, state = _setup(method)
    bad = SyntheticData(8).batch_at(0)
    bad["image"][0, 0, 0, 0] = np.nan
    _, metrics = jax.jit(make_method_step(method, tx))(state, bad)
    assert float(metrics["finite"]) == 0.0 and not np.isfinite(float(metrics["loss"]))
    _, metrics = jax.jit(make_method_step(method, tx))(state, SyntheticData(8).batch_at(0))
    assert float(metrics["finite"]) == 1.0


class ZeroHeadBiasToy(ToyClassifier):
    """Sets the head bias to the step number after each update (the shape of CLIP's logit-scale clamp)."""

    def post_update(self, trainable, *, step):
        return eqx.tree_at(lambda t: t.head.bias, trainable, jnp.full_like(trainable.head.bias, step))


def test_post_update_hook_runs_after_the_update():
    method = ZeroHeadBiasToy()
    tx, _, state = _setup(method)
    fn = jax.jit(make_method_step(method, tx))
    state, _ = fn(state, SyntheticData(8).batch_at(0))
    state, metrics = fn(state, SyntheticData(8).batch_at(1))
    np.testing.assert_array_equal(np.asarray(state.model.head.bias), np.ones(4, np.float32))  # step 1's value
    params = [np.asarray(x, np.float64) for x in jax.tree.leaves(eqx.filter(state.model, eqx.is_inexact_array))]
    np.testing.assert_allclose(float(metrics["param_norm"]), np.sqrt(sum(np.sum(x**2) for x in params)), rtol=1e-5)


def test_train_step_donates_the_state():
    method = ToyClassifier()
    tx, _, state = _setup(method)
    weight = state.model.hidden.weight
    new, _ = make_train_step(method, tx)(state, SyntheticData(8).batch_at(0))
    assert weight.is_deleted()
    assert not new.model.hidden.weight.is_deleted()


def test_teacher_initialised_from_student_is_not_aliased():
    # BYOL/DINO teachers start as the student; donation fails if two state leaves share a buffer.
    method = ToyTeacher()
    tx, _, state = _setup(method)
    ids = [id(x) for x in jax.tree.leaves(eqx.filter(state, eqx.is_array))]
    assert len(ids) == len(set(ids))
    make_train_step(method, tx)(state, SyntheticData(8).batch_at(0))


def test_abstract_state_is_measured_without_allocation():
    method = ToyClassifier(image_shape=(16, 16, 1), hidden=64, num_classes=8, noise=0.0)  # no RNG integer ops
    tx = make_optimizer(OptimConfig(weight_decay=0.1), 100)
    b = 512
    state, batch = abstract_pretrain_state(method, tx, {"image": jax.ShapeDtypeStruct((b, 16, 16, 1), jnp.float32),
                                                     "label": jax.ShapeDtypeStruct((b,), jnp.int32)})
    assert all(isinstance(x, jax.ShapeDtypeStruct) for x in jax.tree.leaves(state))
    cost = flopmeter.measure(make_method_step(method, tx), state, batch)
    first, second = 2 * b * 256 * 64, 2 * b * 64 * 8  # the two matmuls, 2 FLOPs per multiply-add
    # Forward + backward: each matmul's forward and weight gradient, plus the input gradient of the second only
    # (nothing needs the gradient of the images); elementwise work (gelu, softmax, Adam) adds < 10%.
    matmuls = 2 * first + 3 * second
    assert matmuls <= cost.flops <= 1.1 * matmuls, (cost.flops, matmuls)

"""The run length as data: schedules read from a `RunLength` give the values of today's constants (optax's
learning rate bit for bit), and two budgets of one method share one compiled step (the second compiles nothing)."""

import math
import re
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import vitcore
from jaxtyping import Array, Float, Int, PRNGKeyArray
from runloop import LoopConfig

sys.path.insert(0, str(Path(__file__).parent))
from _engine_toys import SyntheticData, ToyTeacher  # noqa: E402
from sslmethods import BYOL, DINO  # noqa: E402
from sslmethods.blocks import schedules  # noqa: E402
from sslmethods.methods.method import Batch  # noqa: E402
from sslmethods.pretrain.optim import OptimConfig, learning_rate_schedule, weight_decay_schedule  # noqa: E402
from sslmethods.pretrain.run_length import RunLength, run_length  # noqa: E402
from sslmethods.pretrain.step import make_method_step, make_run_step_fn  # noqa: E402
from sslmethods.pretrain.train_state import init_pretrain_state, method_optimizer  # noqa: E402
from sslmethods.pretrain.trainer import TrainConfig, train_method  # noqa: E402

LENGTHS = (1, 2, 7, 100, 224, 896, 1637, 6549)
CONFIGS = (
    OptimConfig(lr=1e-3, start_lr=1e-7, min_lr=2e-6, warmup_steps=100),  # CLIP's shape: warm-up from 1e-7
    OptimConfig(lr=3e-4, warmup_fraction=0.05),  # BYOL's: 5% of the run, rounded
    OptimConfig(lr=7.5e-4, min_lr=2e-6, warmup_steps=10_000),  # a warm-up longer than short runs (capped)
    OptimConfig(lr=2e-3, warmup_fraction=0.0),
)


def _today_lr(cfg, total):
    """The learning rate as the step compiled it before lengths were data: optax's schedules on Python ints."""
    warmup = cfg.warmup_for(total)
    if warmup == total:
        inner = optax.linear_schedule(cfg.start_lr, cfg.lr, max(warmup, 1))
    else:
        inner = optax.warmup_cosine_decay_schedule(cfg.start_lr, cfg.lr, warmup, total, cfg.min_lr)

    def schedule(count):
        with jax.numpy_dtype_promotion("standard"):
            return jnp.asarray(inner(count), jnp.float32)

    return schedule


def _counts(total):
    return jnp.arange(total + 3, dtype=jnp.int32)  # past the end too: constant there


@pytest.mark.parametrize("cfg", CONFIGS)
def test_learning_rate_from_a_run_length_is_optax_bit_for_bit(cfg):
    from_data = jax.jit(lambda c, length: jax.vmap(learning_rate_schedule(cfg, length))(c))
    for total in LENGTHS:
        counts = _counts(total)
        today = np.asarray(jax.jit(jax.vmap(_today_lr(cfg, total)))(counts))
        np.testing.assert_array_equal(np.asarray(from_data(counts, run_length(cfg, total))), today,
                                      err_msg=f"{cfg}, {total} steps")
        np.testing.assert_array_equal(np.asarray(jax.jit(jax.vmap(learning_rate_schedule(cfg, total)))(counts)),
                                      today)


def _float64_cosine(start, end, k, total):
    return end + (start - end) * (1 + math.cos(math.pi * min(k, total) / total)) / 2


def _schedule_values(total, counts):
    """DINO's, BYOL's and the weight decay's schedules at ``counts`` (traced, as the optimizer's counter in a
    step), with the length ``total`` compiled in as a Python int and given as data."""
    cfg = OptimConfig(weight_decay=0.04, weight_decay_end=0.4)
    backbone = vitcore.get_config("vit-test")
    dino, byol = DINO(backbone=backbone, total_steps=total), BYOL(backbone=backbone, total_steps=total)

    def values(dino_, byol_, wd, steps):
        return {"temp": jax.vmap(dino_.teacher_temp)(steps), "momentum": jax.vmap(dino_.teacher_momentum)(steps),
                "frozen": steps < dino_.frozen_last_layer_steps, "tau": jax.vmap(byol_.tau)(steps),
                "wd": jax.vmap(wd)(steps)}

    constant = jax.jit(lambda c: values(dino, byol, weight_decay_schedule(cfg, total), c))(counts)
    data = jax.jit(lambda c, n: values(dino.with_run_length(n), byol.with_run_length(n),
                                       weight_decay_schedule(cfg, RunLength(n, jnp.int32(0))), c)
                   )(counts, jnp.int32(total))
    return constant, data


def test_method_and_weight_decay_schedules_from_a_run_length_equal_the_constant_ones():
    """DINO's teacher temperature, momentum and frozen last layer, BYOL's target rate and the weight-decay cosine:
    the same float32 values from a traced length as from the Python int compiled in, and the closed forms."""
    for total in (1, 3, 224, 896, 40_000):
        constant, data = _schedule_values(total, _counts(total))
        for name in constant:
            np.testing.assert_array_equal(np.asarray(data[name]), np.asarray(constant[name]), err_msg=name)
        warm = min(30 * 1252, total)  # DINO's 30 ImageNet epochs at batch 1024, at most the run
        for k in (0, total // 2, total, total + 2):
            assert data["temp"][k] == pytest.approx(0.04 + 0.03 * min(k / warm, 1.0), rel=1e-6)
            assert data["momentum"][k] == pytest.approx(_float64_cosine(0.996, 1.0, k, total), rel=1e-7)
            assert data["tau"][k] == pytest.approx(_float64_cosine(0.996, 1.0, k, total), rel=1e-7)
            assert data["wd"][k] == pytest.approx(_float64_cosine(0.04, 0.4, k, total), rel=1e-6)
            assert bool(data["frozen"][k]) == (k < min(1252, total))


def test_run_length_holds_the_host_worked_lengths_and_checks_them(without_jaxtyping):
    length = run_length(OptimConfig(warmup_fraction=0.05), 450)  # round(22.5) = 22, as Python rounds
    assert (int(length.total_steps), int(length.warmup_steps)) == (450, 22)
    assert length.total_steps.dtype == jnp.int32
    for bad in (0, 2**24, 3.0, True):
        with pytest.raises(ValueError, match=re.escape(f"total_steps={bad!r}; expected an integer in [1, 2**24)")):
            run_length(OptimConfig(), bad)


class ScheduledToy(ToyTeacher):
    """ToyTeacher whose teacher EMA follows BYOL's cosine over the run and whose view noise follows DINO's
    temperature warm-up over half of it: method schedules of the run length, as the real ones, at toy cost."""

    total_steps: int | Int[Array, ""] = eqx.field(kw_only=True, default=100)  # a leaf: the length is data

    def views(self, batch: Batch, *, step: Int[Array, ""], key: PRNGKeyArray) -> Batch:
        scale = schedules.dino_teacher_temperature(self.total_steps // 2, start=0.5, end=1.0)(step)
        noise = self.noise * scale * jax.random.normal(key, batch["image"].shape, jnp.float32)
        return {"image": batch["image"] + noise, "label": batch["label"]}

    def rate(self, step: Int[Array, ""]) -> Float[Array, ""]:
        return schedules.byol_tau(0.9, self.total_steps)(step)

    def update_state(self, trainable, state, aux, *, step):
        student, rate = eqx.filter(trainable, eqx.is_array), self.rate(step)
        teacher = jax.tree.map(lambda t, s: rate * t + (1 - rate) * s, state["teacher"], student)
        return {"teacher": teacher, "centre": 0.9 * state["centre"] + 0.1 * aux["batch_centre"]}


OPTIM = OptimConfig(lr=3e-2, start_lr=1e-3, min_lr=1e-4, weight_decay=0.05, weight_decay_end=0.2,
                    warmup_fraction=0.3)


def _lowered_text(step_fn, method, *args):
    state = init_pretrain_state(method, method_optimizer(method, OPTIM, 10), key=jax.random.key(0))
    batch = {k: jnp.asarray(v) for k, v in SyntheticData(8).batch_at(0).items()}
    return jax.jit(step_fn).lower(state, batch, *args).as_text()


def test_two_budgets_of_a_method_share_one_compiled_step(tmp_path, fresh_compilation_cache):
    logs, runs = [], {}
    for steps in (4, 7):
        cfg = TrainConfig(str(tmp_path / f"budget{steps}"), LoopConfig(steps=steps, batch_size=8, log_every=1,
                                                                       print_progress=False))
        runs[steps] = train_method(ScheduledToy(total_steps=steps), OPTIM, SyntheticData(8), cfg, log=logs.append)
    program_lines = [line for line in logs if "step program" in line]
    assert len(program_lines) == 2, logs
    assert program_lines[0].startswith(f"{tmp_path.name}/budget4: step program compiled in ")
    assert program_lines[1].startswith(f"{tmp_path.name}/budget7: step program read from the compilation cache in ")
    # the one program: the same text for both lengths; with the lengths compiled in, two programs
    texts = {n: _lowered_text(make_run_step_fn(ScheduledToy(total_steps=n), OPTIM), ScheduledToy(total_steps=n),
                              run_length(OPTIM, n)) for n in (4, 7)}
    assert texts[4] == texts[7]
    constant = {n: _lowered_text(make_method_step(ScheduledToy(total_steps=n),
                                              method_optimizer(ScheduledToy(total_steps=n), OPTIM, n)),
                                 ScheduledToy(total_steps=n)) for n in (4, 7)}
    assert constant[4] != constant[7]
    # each budget still follows its own schedules: the learning rate of its last step is its floor
    assert runs[7][0].final_metrics["lr"] == pytest.approx(float(learning_rate_schedule(OPTIM, 7)(6)), rel=1e-6)
    assert runs[4][0].final_metrics["lr"] == pytest.approx(float(learning_rate_schedule(OPTIM, 4)(3)), rel=1e-6)


def test_a_step_with_its_length_as_data_trains_as_the_step_with_constants():
    """Four steps of `make_run_step_fn` against the step whose schedules hold the length as Python ints (how every
    run trained before): the same losses, metrics and parameters."""
    method, total = ScheduledToy(total_steps=6, noise=0.3), 6
    tx = method_optimizer(method, OPTIM, total)
    data = jax.jit(make_run_step_fn(method, OPTIM))
    constant = jax.jit(make_method_step(method, tx, lr_schedule=learning_rate_schedule(OPTIM, total)))
    states = [init_pretrain_state(method, tx, key=jax.random.key(3)) for _ in range(2)]
    length = run_length(OPTIM, total)
    for index in range(4):
        batch = {k: jnp.asarray(v) for k, v in SyntheticData(8, seed=5).batch_at(index).items()}
        states[0], got = data(states[0], batch, length)
        states[1], want = constant(states[1], batch)
        assert set(got) == set(want)
        for name in want:
            np.testing.assert_allclose(float(got[name]), float(want[name]), rtol=1e-6, err_msg=f"{name}, step {index}")
        assert float(got["lr"]) == float(want["lr"])
    for a, b in zip(jax.tree.leaves(eqx.filter(states[0], eqx.is_inexact_array)),
                    jax.tree.leaves(eqx.filter(states[1], eqx.is_inexact_array)), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["supervised", "clip", "simclr", "byol", "dino", "mae"])
def test_every_methods_demo_step_is_one_program_for_every_budget(name):
    """The demo's recipe of each method (`vit-test`, its optimizer preset with its warm-up) lowers to the same
    program text at the step counts of two budgets: nothing of the run length is a constant of the step."""
    from sslmethods.pretrain import recipes
    from sslmethods.pretrain.train_state import abstract_pretrain_state

    fields = {"supervised": {"num_classes": 10}, "clip": {"class_names": tuple("abcdefghij")}}.get(name, {})
    texts = []
    for steps in (224, 896):  # DINO's demo budgets 4e11 and 1.6e12
        method, optim = recipes.build_method(name, "vit-test", preset="demo", total_steps=steps,
                                             method_overrides=fields)
        state, batch = abstract_pretrain_state(method, method_optimizer(method, optim, steps), method.batch_spec(8))
        texts.append(jax.jit(make_run_step_fn(method, optim)).lower(state, batch, run_length(optim, steps)).as_text())
    assert texts[0] == texts[1]

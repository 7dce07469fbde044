"""Schedules against their closed forms (and optax's warm-up cosine as an independent implementation)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sslmethods.blocks import schedules

STEPS = [0, 1, 7, 50, 99, 100, 150]


def test_warmup_cosine_matches_closed_form_and_optax():
    peak, total, warm, init, end = 1e-3, 100, 10, 1e-7, 2e-6
    sched = schedules.warmup_cosine(peak, total, warmup_steps=warm, init_value=init, end_value=end)
    ref = optax.warmup_cosine_decay_schedule(init, peak, warm, total, end)
    for k in STEPS:
        if k < warm:
            closed = init + (peak - init) * k / warm
        else:
            closed = (
                end
                + (peak - end) * (1 + math.cos(math.pi * min(k - warm, total - warm) / (total - warm))) / 2
            )
        np.testing.assert_allclose(float(sched(k)), closed, rtol=1e-5, atol=1e-10)
        np.testing.assert_allclose(float(sched(k)), float(ref(k)), rtol=1e-5, atol=1e-10)
    assert float(sched(warm)) == pytest.approx(peak, rel=1e-6)
    assert float(sched(total)) == pytest.approx(end, rel=1e-5)


def test_warmup_cosine_no_warmup_starts_at_peak_and_jits():
    sched = schedules.warmup_cosine(0.5, 20)
    values = jax.jit(jax.vmap(sched))(jnp.arange(21, dtype=jnp.int32))
    assert values.dtype == jnp.float32
    np.testing.assert_allclose(
        np.asarray(values), 0.5 * (1 + np.cos(np.pi * np.arange(21) / 20)) / 2, atol=1e-6
    )


def test_warmup_cosine_rejects_bad_lengths():
    with pytest.raises(ValueError, match="warmup_steps=11: expected at most total_steps=10"):
        schedules.warmup_cosine(1.0, 10, warmup_steps=11)
    with pytest.raises(ValueError, match="total_steps"):
        schedules.warmup_cosine(1.0, 0)


@pytest.mark.parametrize("base", [0.99, 0.996, 0.97])
def test_byol_tau(base):
    total = 1000
    sched = schedules.byol_tau(base, total)
    for k in [0, 1, 250, 500, 999, 1000, 5000]:
        closed = 1 - (1 - base) * (math.cos(math.pi * min(k, total) / total) + 1) / 2
        np.testing.assert_allclose(float(sched(k)), closed, rtol=1e-6)
    assert float(sched(0)) == pytest.approx(base) and float(sched(total)) == 1.0


def test_dino_teacher_momentum_and_weight_decay():
    total = 400
    mom, wd = schedules.dino_teacher_momentum(total), schedules.dino_weight_decay(total)
    for k in [0, 100, 200, 399, 400]:
        c = (1 + math.cos(math.pi * k / total)) / 2
        np.testing.assert_allclose(float(mom(k)), 1.0 + (0.996 - 1.0) * c, rtol=1e-6)
        np.testing.assert_allclose(float(wd(k)), 0.4 + (0.04 - 0.4) * c, rtol=1e-5)
    assert float(mom(0)) == pytest.approx(0.996) and float(mom(total)) == 1.0
    assert float(wd(total // 2)) == pytest.approx(0.22, rel=1e-5)


def test_dino_teacher_temperature():
    sched = schedules.dino_teacher_temperature(30)
    for k, expected in [(0, 0.04), (15, 0.055), (30, 0.07), (1000, 0.07)]:
        np.testing.assert_allclose(float(sched(k)), expected, rtol=1e-5)
    assert float(schedules.dino_teacher_temperature(0)(0)) == pytest.approx(0.07)
    # a traced int32 step (the optimizer's counter) works under jit
    assert float(jax.jit(sched)(jnp.int32(15))) == pytest.approx(0.055, rel=1e-5)

"""time_step, peak_flops and MFU."""

import time

import flopmeter
import jax
import jax.numpy as jnp
import pytest


def test_time_step_excludes_compile_and_waits_for_results():
    def slow(x, *, seconds):
        # The host callback sleeps when the program runs; timing must include it (block_until_ready).
        return jax.pure_callback(
            lambda v: (time.sleep(seconds), v)[1], jax.ShapeDtypeStruct(x.shape, x.dtype), x
        )

    median = flopmeter.time_step(slow, jnp.ones((4,), jnp.float32), seconds=0.02, warmup=1, repeats=3)
    assert 0.02 <= median < 0.5


def test_time_step_rejects_abstract_arguments():
    with pytest.raises(TypeError, match="ShapeDtypeStruct"):
        flopmeter.time_step(jnp.sin, jax.ShapeDtypeStruct((2,), jnp.float32))


def test_peak_flops_and_mfu():
    peak = flopmeter.peak_flops(size=128, dtype="float32", repeats=3)
    assert 1e6 < peak < 1e15
    assert flopmeter.mfu(2e12, 1.0, 4e12) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="seconds_per_step"):
        flopmeter.mfu(1.0, 0.0, 1.0)

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


def test_peak_is_the_best_of_every_shape_and_dtype_tried():
    shapes = ((32, 64, 16), (128, 128, 128))
    peak = flopmeter.peak_flops(shapes=shapes, dtypes=("float32", "bfloat16"), repeats=1)
    assert [(t.shape, t.dtype) for t in peak.trials] == [
        (s, d) for d in ("float32", "bfloat16") for s in shapes
    ]
    for trial in peak.trials:  # each rate is 2 m k n over the trial's own time
        m, k, n = trial.shape
        assert trial.flops_per_second == pytest.approx(2 * m * k * n / trial.seconds)
    best = max(peak.trials, key=lambda t: t.flops_per_second)
    assert (peak.shape, peak.dtype, peak.flops_per_second) == (best.shape, best.dtype, best.flops_per_second)
    # No tried matmul can run above the peak: the MFU of each against it is at most 1.
    assert all(flopmeter.mfu(2 * t.shape[0] * t.shape[1] * t.shape[2], t.seconds, peak) <= 1.0 for t in peak.trials)
    assert peak.device_kind == jax.devices()[0].device_kind
    assert "128x128x128 | bfloat16" in peak.table() and "(peak)" in peak.table()
    with pytest.raises(ValueError, match="shapes"):
        flopmeter.peak_flops(shapes=((0, 4, 4),))
    with pytest.raises(ValueError, match="floating"):
        flopmeter.peak_flops(shapes=shapes, dtypes=("int32",))


def test_mfu_against_a_number_a_measured_peak_or_the_hardware_table():
    assert flopmeter.mfu(2e12, 1.0, 4e12) == pytest.approx(0.5)
    h100 = flopmeter.hardware("h100-sxm")
    assert flopmeter.mfu(989.4e12 / 2, 1.0, h100) == pytest.approx(0.5)
    measured = flopmeter.PeakFlops(1e11, (8, 8, 8), "float32", "cpu", ())
    assert flopmeter.mfu(5e10, 1.0, measured) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="seconds_per_step"):
        flopmeter.mfu(1.0, 0.0, 1.0)

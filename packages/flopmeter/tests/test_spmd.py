"""Trap 3: after SPMD partitioning XLA's figures are per device; Cost reports per device and global."""

import flopmeter
import jax
import jax.numpy as jnp
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P


def test_data_parallel_matmul_on_four_devices():
    if jax.device_count() < 4:
        pytest.skip("needs 4 devices (the root conftest sets --xla_force_host_platform_device_count=4)")
    mesh = jax.make_mesh((4,), ("data",))
    x = jax.ShapeDtypeStruct((64, 32), jnp.float32, sharding=NamedSharding(mesh, P("data")))
    w = jax.ShapeDtypeStruct((32, 16), jnp.float32, sharding=NamedSharding(mesh, P()))
    cost = flopmeter.measure(lambda x, w: jnp.tanh(x @ w), x, w)
    assert cost.num_devices == 4
    assert cost.flops_per_device == 2 * 16 * 32 * 16  # each device multiplies a quarter of the rows
    assert cost.flops == 2 * 64 * 32 * 16
    assert cost.transcendentals == 64 * 16
    # The pre-partitioning (lowered) estimate is of the whole program: it must agree with the global figure.
    assert cost.lowered_flops == pytest.approx(cost.flops, rel=0.01)


def test_sharded_scan_is_scaled_and_globalised():
    if jax.device_count() < 4:
        pytest.skip("needs 4 devices")
    mesh = jax.make_mesh((4,), ("data",))
    x = jax.ShapeDtypeStruct((64, 32), jnp.float32, sharding=NamedSharding(mesh, P("data")))
    w = jax.ShapeDtypeStruct((5, 32, 32), jnp.float32, sharding=NamedSharding(mesh, P()))
    cost = flopmeter.measure(lambda x, w: jax.lax.scan(lambda c, wi: (c @ wi, None), x, w)[0], x, w)
    assert cost.flops == pytest.approx(5 * 2 * 64 * 32 * 32, rel=0.01)
    assert cost.flops_per_device == pytest.approx(cost.flops / 4, rel=1e-6)

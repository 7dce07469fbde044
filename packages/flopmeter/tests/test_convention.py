"""FLOP conventions: whole program over N devices vs per device, stated wherever a count is written."""

import json

import flopmeter
import jax
import jax.numpy as jnp
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P


def test_flop_count_converts_and_labels():
    whole = flopmeter.FlopCount(1.5e15, "whole_program", num_devices=32)
    per_device = whole.to("per_device")
    assert per_device.flops == 1.5e15 / 32 and per_device.num_devices == 32
    assert per_device.whole_program == 1.5e15 and whole.per_device == 1.5e15 / 32
    assert per_device.to("whole_program") == whole
    assert whole.label() == "1.5 PFLOP (whole program over 32 devices)"
    assert per_device.label() == "46.88 TFLOP (per device, 1 of 32)"
    # A one-device measurement placed on an axis of per-device counts over 32 chips (the study's setup).
    single = flopmeter.FlopCount(6.4e15, "whole_program", num_devices=1)
    assert single.to("per_device", num_devices=32).flops == 2e14
    assert flopmeter.convention_label("per_device", 1) == "whole program, 1 device"


def test_flop_count_columns_round_trip_and_never_guess():
    count = flopmeter.FlopCount(3e18, "per_device", num_devices=32)
    columns = count.to_dict("pretrain_flops")
    assert columns == {"pretrain_flops": 3e18, "pretrain_flops_convention": "per_device", "pretrain_flops_devices": 32}
    assert flopmeter.FlopCount.from_dict(columns, "pretrain_flops") == count
    with pytest.raises(ValueError, match="must state its convention"):
        flopmeter.FlopCount.from_dict({"pretrain_flops": 3e18}, "pretrain_flops")
    with pytest.raises(ValueError, match="flops_convention='per_chip' is invalid"):
        flopmeter.FlopCount(1.0, "per_chip", num_devices=1)
    with pytest.raises(ValueError, match="num_devices=0"):
        flopmeter.FlopCount(1.0, "whole_program", num_devices=0)


def test_cost_states_its_convention_on_four_devices():
    if jax.device_count() < 4:
        pytest.skip("needs 4 devices (the root conftest sets --xla_force_host_platform_device_count=4)")
    mesh = jax.make_mesh((4,), ("data",))
    x = jax.ShapeDtypeStruct((64, 32), jnp.float32, sharding=NamedSharding(mesh, P("data")))
    w = jax.ShapeDtypeStruct((32, 16), jnp.float32, sharding=NamedSharding(mesh, P()))
    cost = flopmeter.measure(jnp.matmul, x, w)
    assert cost.flop_count().flops == 2 * 64 * 32 * 16 == cost.flops
    assert cost.flop_count("per_device").flops == 2 * 16 * 32 * 16 == cost.flops_per_device
    assert cost.flop_count("per_device").label() == "16.38 kFLOP (per device, 1 of 4)"
    data = json.loads(cost.to_json())
    assert data["flops_convention"] == "whole_program" and flopmeter.Cost.from_dict(data) == cost
    assert "whole program over 4 devices" in cost.table()
    with pytest.raises(ValueError, match="always 'whole_program'"):
        flopmeter.Cost.from_dict({**data, "flops_convention": "per_device"})

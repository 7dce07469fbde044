"""Batch sharding on the 4 fake CPU devices: the batch axis is split, indivisible batches are clear errors."""

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec
from runloop import batch_sharding, check_batch_size, make_mesh, put_batch, state_shardings


def _batch(n):
    return {"image": np.zeros((n, 8, 8, 1), np.float32), "label": np.arange(n, dtype=np.int32)}


def test_put_batch_splits_the_batch_axis():
    assert jax.device_count() == 4, "the root conftest sets 4 fake CPU devices"
    mesh = make_mesh()
    batch = put_batch(_batch(8), mesh)
    image = batch["image"]
    assert image.shape == (8, 8, 8, 1)
    assert image.sharding == batch_sharding(mesh)
    assert {s.data.shape for s in image.addressable_shards} == {(2, 8, 8, 1)}
    np.testing.assert_array_equal(np.asarray(batch["label"]), np.arange(8))


def test_indivisible_batch_and_strings_are_clear_errors():
    mesh = make_mesh()
    with pytest.raises(ValueError, match=r"batch_size=10 is not divisible by the 4 devices.*8 or 12"):
        check_batch_size(10, mesh)
    with pytest.raises(ValueError, match="batch_size=6"):
        put_batch(_batch(6), mesh)
    with pytest.raises(TypeError, match=r"batch\['caption'\] holds <U1 values"):
        put_batch({"caption": np.array(["a"] * 4)}, mesh)


def test_fsdp_splits_the_largest_divisible_axis():
    mesh = make_mesh()
    state = {"w": jax.ShapeDtypeStruct((6, 16), np.float32), "b": jax.ShapeDtypeStruct((6,), np.float32)}
    plan = state_shardings(state, mesh, "fsdp")
    assert plan["w"].spec == PartitionSpec(None, "data") and plan["b"].spec == PartitionSpec()
    assert state_shardings(state, mesh)["w"].spec == PartitionSpec()
    with pytest.raises(ValueError, match="params='zero'"):
        state_shardings({}, mesh, "zero")

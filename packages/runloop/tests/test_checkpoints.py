"""orbax checkpoints of a state pytree + data iterator state: exact restore (also sharded, also from an abstract
template), retention with the last good one, NaN refusal, unreadable newest checkpoint, orbax leftovers."""

import glob
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _toys import ArrayData, arrays, init, step  # noqa: E402
from runloop import (  # noqa: E402
    Checkpointer,
    NonFiniteError,
    abstract_state,
    all_finite,
    make_mesh,
    shard_state,
    state_shardings,
)


@pytest.fixture(scope="module")
def trained():
    state, data = init(3), ArrayData()
    fn = jax.jit(step)
    for _ in range(3):
        state, _ = fn(state, next(data))
    return state, data


def _at(state, s):
    return eqx.tree_at(lambda t: t.step, state, jnp.int32(s))


def test_restore_is_exact(tmp_path, trained):
    state, data = trained
    ckpt = Checkpointer(tmp_path)
    assert ckpt.restore(state) is None  # nothing saved yet
    assert ckpt.save(3, state, data_state=data.get_state(), metadata={"wall_seconds": 1.5, "loss": np.float32(2)})
    assert not ckpt.save(3, state)  # already kept: nothing written
    restored = ckpt.restore(init(99))
    assert (restored.step, restored.data_state, restored.metadata) == (3, {"index": 3}, {"wall_seconds": 1.5,
                                                                                         "loss": 2.0})
    for a, b in zip(arrays(restored.state), arrays(state), strict=True):
        np.testing.assert_array_equal(a, b)
    assert jax.dtypes.issubdtype(restored.state.key.dtype, jax.dtypes.prng_key)
    from_abstract = ckpt.restore(abstract_state(init, 0))  # no allocation before the restore
    for a, b in zip(arrays(from_abstract.state), arrays(state), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bytes_data_state_and_sharded_restore(tmp_path, trained):
    state, _ = trained
    ckpt = Checkpointer(tmp_path)
    ckpt.save(3, state, data_state=b"\x00grain-state\xff")
    abstract = abstract_state(init, 0)
    shardings = state_shardings(abstract, make_mesh(), "fsdp")
    restored = ckpt.restore(abstract, shardings=shardings)
    assert restored.data_state == b"\x00grain-state\xff"
    weight = restored.state.model.weight  # (8, 16): the larger axis is split over the 4 devices
    assert weight.sharding == shardings.model.weight and len(weight.sharding.device_set) == 4
    np.testing.assert_array_equal(np.asarray(weight), np.asarray(state.model.weight))
    # a concrete sharded template places the arrays the same way
    template = shard_state(init(0), shardings)
    assert ckpt.restore(template).state.model.weight.sharding == shardings.model.weight


def test_keeps_the_newest_and_the_last_good(tmp_path, trained):
    state, _ = trained
    ckpt = Checkpointer(tmp_path, keep=2)
    for s, good in ((2, True), (4, True), (6, False), (8, False)):
        ckpt.save(s, _at(state, s), metadata={"good": good})
    assert ckpt.steps() == [4, 6, 8]  # the newest 2, plus 4: the newest good one
    assert ckpt.last_good() == 4
    # an older kept step reads without touching the others; a run continuing from it drops the newer ones
    assert ckpt.restore(state, step=4).step == 4 and ckpt.steps() == [4, 6, 8]
    assert ckpt.discard_after(4) == [6, 8] and ckpt.steps() == [4]
    with pytest.raises(ValueError, match=r"step=6: no such checkpoint .*kept steps: \[4\]"):
        ckpt.restore(state, step=6)


def test_never_saves_a_nan_over_a_good_checkpoint(tmp_path, trained):
    state, _ = trained
    ckpt = Checkpointer(tmp_path)
    ckpt.save(3, state)
    bad = eqx.tree_at(lambda t: t.model.bias, state, state.model.bias.at[0].set(jnp.nan))
    assert all_finite(state) and not all_finite(bad)
    with pytest.raises(NonFiniteError, match=r"step 4; last good checkpoint: .*/3"):
        ckpt.save(4, bad)
    assert ckpt.steps() == [3]


def test_unreadable_newest_falls_back_with_a_warning(tmp_path, trained):
    state, _ = trained
    with Checkpointer(tmp_path) as ckpt:
        for s in (2, 4):
            ckpt.save(s, _at(state, s), data_state={"index": s})
    (tmp_path / "6.orbax-checkpoint-tmp-1234" / "state").mkdir(parents=True)  # what a kill mid-save leaves
    for name in glob.glob(str(tmp_path / "4" / "state" / "**" / "d" / "*"), recursive=True):
        with open(name, "r+b") as f:
            f.truncate(8)
    ckpt = Checkpointer(tmp_path)
    assert ckpt.steps() == [2, 4]  # the leftover is ignored
    with pytest.raises(ValueError, match=rf"^{tmp_path}/4 is not a valid checkpoint \(\w+"):  # asked for by step
        ckpt.restore(state, step=4)
    with pytest.warns(RuntimeWarning, match=r"checkpoint .*/4 is unreadable \(.*\); set aside .*falling back to .*/2"):
        restored = ckpt.restore(state)
    assert (restored.step, restored.data_state) == (2, {"index": 2})
    assert ckpt.steps() == [2] and (tmp_path / "unreadable" / "4").is_dir()
    ckpt.save(4, _at(state, 4))  # the step can be written again
    assert ckpt.steps() == [2, 4]
    ckpt.close()


def test_checkpoint_of_another_model_is_a_clear_error(tmp_path, trained):
    state, _ = trained
    ckpt = Checkpointer(tmp_path)
    ckpt.save(3, state)
    other = eqx.tree_at(lambda t: t.model.weight, state, jnp.zeros((4, 16)))
    with pytest.raises(ValueError, match=r"/3 holds a different state: array \d is float32\[8, 16\] in the "
                                         r"checkpoint and float32\[4, 16\] in this run"):
        ckpt.restore(other)
    with pytest.raises(ValueError, match="keep=0"):
        Checkpointer(tmp_path, keep=0)

"""orbax checkpoints of the whole TrainState + data iterator state: exact restore, retention, NaN refusal."""

import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _engine_toys import SyntheticData, ToyTeacher  # noqa: E402
from sslmethods.checkpoint import Checkpointer, NonFiniteError, all_finite  # noqa: E402
from sslmethods.optim import OptimConfig, make_optimizer  # noqa: E402
from sslmethods.sharding import make_mesh, shard_state, state_shardings  # noqa: E402
from sslmethods.step import make_train_step  # noqa: E402
from sslmethods.train_state import abstract_train_state, init_train_state  # noqa: E402


def _arrays(state):
    out = []
    for x in jax.tree.leaves(eqx.filter(state, eqx.is_array)):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        out.append(np.asarray(x))
    return out


@pytest.fixture(scope="module")
def trained():
    method = ToyTeacher()
    tx = make_optimizer(OptimConfig(lr=1e-2, weight_decay=0.1, warmup_steps=1), 10)
    state = init_train_state(method, tx, key=jax.random.key(3))
    step = make_train_step(method, tx)
    data = SyntheticData(8)
    for _ in range(3):
        state, _ = step(state, next(data))
    return method, tx, state, data


def test_restore_is_exact(tmp_path, trained):
    method, tx, state, data = trained
    ckpt = Checkpointer(tmp_path, every=1)
    assert ckpt.restore(state) is None  # nothing saved yet
    ckpt.save(state, data_state=data.get_state(), metadata={"wall_seconds": 1.5})
    template = init_train_state(method, tx, key=jax.random.key(99))
    restored, data_state, meta = ckpt.restore(template)
    assert data_state == {"index": 3, "seed": 0} and meta == {"wall_seconds": 1.5}
    assert int(restored.step) == 3
    for a, b in zip(_arrays(restored), _arrays(state), strict=True):
        np.testing.assert_array_equal(a, b)
    assert jax.dtypes.issubdtype(restored.key.dtype, jax.dtypes.prng_key)
    # The same from an abstract template (no allocation before the restore).
    abstract, _ = abstract_train_state(method, tx, (8, 8, 8, 1))
    from_abstract, _, _ = ckpt.restore(abstract)
    for a, b in zip(_arrays(from_abstract), _arrays(state), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bytes_data_state_and_sharded_restore(tmp_path, trained):
    method, tx, state, _ = trained
    ckpt = Checkpointer(tmp_path, every=1)
    ckpt.save(state, data_state=b"\x00grain-state\xff")
    mesh = make_mesh()
    template = init_train_state(method, tx, key=jax.random.key(0))
    template = shard_state(template, state_shardings(template, mesh, "fsdp"))
    restored, data_state, _ = ckpt.restore(template)
    assert data_state == b"\x00grain-state\xff"
    assert restored.trainable.hidden.weight.sharding == template.trainable.hidden.weight.sharding
    np.testing.assert_array_equal(np.asarray(restored.trainable.hidden.weight),
                                  np.asarray(state.trainable.hidden.weight))


def test_keeps_the_last_k(tmp_path, trained):
    _, _, state, _ = trained
    ckpt = Checkpointer(tmp_path, every=2, keep=2)
    for s in range(1, 7):
        ckpt.maybe_save(eqx.tree_at(lambda t: t.step, state, jnp.int32(s)))
    assert sorted(int(p.name) for p in tmp_path.iterdir() if p.name.isdigit()) == [4, 6]
    assert ckpt.latest_step() == 6


def test_never_saves_a_nan_over_a_good_checkpoint(tmp_path, trained):
    _, _, state, _ = trained
    ckpt = Checkpointer(tmp_path, every=1)
    ckpt.save(state)
    bad = eqx.tree_at(lambda t: (t.trainable.hidden.bias, t.step), state,
                      (state.trainable.hidden.bias.at[0].set(jnp.nan), jnp.int32(4)))
    assert all_finite(state) and not all_finite(bad)
    with pytest.raises(NonFiniteError, match=r"step 4; last good checkpoint: .*/3"):
        ckpt.save(bad)
    assert ckpt.latest_step() == 3


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="every=0"):
        Checkpointer(tmp_path, every=0)
    with pytest.raises(ValueError, match="keep=0"):
        Checkpointer(tmp_path, every=1, keep=0)

"""Shared fixtures of segtransfer's tests (segmentation and detection): `checkpoints_equal`, which compares the
states two runs checkpointed, bit for bit."""

import equinox as eqx
import jax
import numpy as np
import pytest
from runloop import Checkpointer


def _checkpointed_arrays(task, run_dir, step):
    """The state of ``task`` (a `runloop.TrainTask`) that ``run_dir`` checkpointed at ``step``, as numpy arrays
    (PRNG keys as raw data)."""
    template = eqx.filter_eval_shape(task.init, *task.init_args)
    with Checkpointer(run_dir / "checkpoints") as ckpt:
        state = ckpt.restore(template, step=step).state
    return [np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x)
            for x in jax.tree.leaves(eqx.filter(state, eqx.is_array))]


@pytest.fixture(scope="session")
def checkpoints_equal():
    """``checkpoints_equal(task, (run_dir_a, step_a), (run_dir_b, step_b))``: whether the two checkpointed states
    of ``task`` (model, optimizer state, step, key) are bit-identical."""

    def equal(task, a, b):
        first, second = _checkpointed_arrays(task, *a), _checkpointed_arrays(task, *b)
        return len(first) == len(second) and all(np.array_equal(x, y) for x, y in zip(first, second, strict=True))

    return equal

"""Split call arguments into dynamic (traced) and static leaves, so any pytree can be compiled abstractly.

`eqx.filter_jit` treats `jax.ShapeDtypeStruct` leaves as static, which breaks abstract measurement; here
arrays *and* ShapeDtypeStructs are dynamic, everything else (Python scalars, functions, strings, module
metadata) is closed over as a constant. Concrete arrays are replaced by ShapeDtypeStructs so nothing is
transferred or run.
"""

from collections.abc import Callable
from typing import Any

import jax
import numpy as np


def is_dynamic(leaf: Any) -> bool:
    """True for leaves that become traced inputs: JAX/NumPy arrays and `jax.ShapeDtypeStruct`s."""
    return isinstance(leaf, (jax.Array, np.ndarray, jax.ShapeDtypeStruct))


def _abstract(leaf: Any) -> jax.ShapeDtypeStruct:
    if isinstance(leaf, jax.ShapeDtypeStruct):
        return leaf
    sharding = getattr(leaf, "sharding", None) if isinstance(leaf, jax.Array) else None
    return jax.ShapeDtypeStruct(np.shape(leaf), leaf.dtype, sharding=sharding)


def partition_call(
    fn: Callable, args: tuple, kwargs: dict
) -> tuple[Callable[[list], Any], list[jax.ShapeDtypeStruct]]:
    """Return `(flat_fn, dynamic_specs)` with `flat_fn(dynamic_leaves) == fn(*args, **kwargs)`."""
    leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
    dynamic_at = [i for i, leaf in enumerate(leaves) if is_dynamic(leaf)]
    dynamic_set = set(dynamic_at)
    static_leaves = [None if i in dynamic_set else leaf for i, leaf in enumerate(leaves)]

    def flat_fn(dynamic_leaves: list) -> Any:
        full = list(static_leaves)
        for i, value in zip(dynamic_at, dynamic_leaves, strict=True):
            full[i] = value
        call_args, call_kwargs = jax.tree_util.tree_unflatten(treedef, full)
        return fn(*call_args, **call_kwargs)

    return flat_fn, [_abstract(leaves[i]) for i in dynamic_at]

"""`BlockStack`: a sequence of transformer blocks, unrolled or as one `lax.scan` over stacked weights;
`stacked_axes`: which leaves of a model hold stacked blocks."""

from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree

from .block import Block


def normalize_indices(indices: Sequence[int], depth: int, *, name: str = "intermediates") -> tuple[int, ...]:
    """Feature (block or stage) indices with negatives resolved (-1 = last); out-of-range values raise."""
    out = []
    for i in indices:
        if not isinstance(i, int) or not -depth <= i < depth:
            raise ValueError(f"{name}={tuple(indices)!r}: {i!r} is not an index of {depth} features (see feature_info)")
        out.append(i % depth)
    return tuple(out)


class BlockStack(eqx.Module):
    """`depth` blocks; with `scan=True` their weights are stacked on a leading axis and run by `lax.scan`
    (one compiled body instead of `depth`; outputs equal the unrolled stack)."""

    layers: tuple[Block, ...] | Block
    drop_path_rates: tuple[float, ...] = eqx.field(static=True)
    scan: bool = eqx.field(static=True)

    def __init__(
        self,
        make_block: Callable[[PRNGKeyArray], Block],
        depth: int,
        *,
        key: PRNGKeyArray,
        drop_path: float = 0.0,
        scan: bool = False,
    ):
        """`make_block(key)` builds one block; `drop_path` is the last block's rate (linear from 0, as
        timm)."""
        keys = jr.split(key, depth)
        if scan:
            self.layers = eqx.filter_vmap(make_block)(keys)
        else:
            self.layers = tuple(make_block(k) for k in keys)
        # numpy, not jnp: this runs under tracing too (eqx.filter_eval_shape) and must stay static.
        self.drop_path_rates = tuple(float(r) for r in np.linspace(0.0, drop_path, depth))
        self.scan = scan

    @property
    def depth(self) -> int:
        return len(self.drop_path_rates)

    def __call__(
        self,
        x: Float[Array, "n d"],
        *,
        mask: Bool[Array, " n"] | None = None,
        key: PRNGKeyArray | None = None,
        collect: tuple[int, ...] = (),
    ) -> tuple[Float[Array, "n d"], tuple[Float[Array, "n d"], ...]]:
        """Run all blocks; also return the outputs of the blocks in `collect` (non-negative indices)."""
        keys = jr.split(key, self.depth) if key is not None else None
        if not self.scan:
            outs = {}
            for i, layer in enumerate(self.layers):
                x = layer(
                    x,
                    drop_path_rate=self.drop_path_rates[i],
                    mask=mask,
                    key=None if keys is None else keys[i],
                )
                if i in collect:
                    outs[i] = x
            return x, tuple(outs[i] for i in collect)

        params, static = eqx.partition(self.layers, eqx.is_array)
        rates = jnp.asarray(self.drop_path_rates, jnp.float32)

        def body(h, xs):
            p, k, r = xs
            h = eqx.combine(p, static)(h, drop_path_rate=r, mask=mask, key=k)
            return h, (h if collect else None)

        x, ys = jax.lax.scan(body, x, (params, keys, rates))
        return x, tuple(ys[i] for i in collect)


def stacked_axes(tree: PyTree) -> PyTree:
    """An int per leaf of ``tree`` (a model, or a filtered/masked copy of one): 1 for leaves of a `BlockStack`
    built with ``scan=True`` (their leading axis stacks the blocks), 0 elsewhere. What a per-parameter rule that
    must see each block on its own needs, e.g. ``runloop.optim.adaptive_grad_clip(..., stacked_axes=stacked_axes)``."""

    def mark(node: Any) -> PyTree:
        count = 1 if isinstance(node, BlockStack) and node.scan else 0
        return jax.tree.map(lambda _: count, node)

    return jax.tree.map(mark, tree, is_leaf=lambda node: isinstance(node, BlockStack))

"""Which parameters get weight decay."""

import equinox as eqx
import jax
from jaxtyping import PyTree


def weight_decay_mask(model: eqx.Module) -> PyTree[bool]:
    """A bool pytree with the structure of `eqx.filter(model, eqx.is_array)`: True for matmul/conv/embedding
    weights (every leaf named `weight`: Linear, patch embedding, token embedding), False for biases, norm
    scales
    and offsets, position embeddings and class/mask tokens.

    Example: `optax.add_decayed_weights(wd, mask=vitcore.weight_decay_mask(model))` on
    `eqx.filter(model, eqx.is_array)`.
    """
    params = eqx.filter(model, eqx.is_array)

    def decide(path, leaf):
        last = path[-1]
        return isinstance(last, jax.tree_util.GetAttrKey) and last.name == "weight"

    return jax.tree_util.tree_map_with_path(decide, params)

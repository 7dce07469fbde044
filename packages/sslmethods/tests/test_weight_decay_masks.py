"""MAE's and DINO's weight-decay masks against their canonical rules, applied to the torch shapes of each leaf.

facebookresearch/mae ``main_pretrain.py`` (timm 0.3.2 ``add_weight_decay``) and facebookresearch/dino
``utils.get_params_groups`` both decay a parameter unless ``len(param.shape) == 1`` or its name ends in
``.bias``. Torch stores the class token, the mask token and the position embedding with a leading batch axis
([1, 1, d], [1, n, d]), so those decay there; here they are [1, d] / [d] / [n, d], which is why a shape rule on
our arrays would not do and each method names them.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest
import vitcore
from sslmethods.methods.dino import DINO
from sslmethods.methods.mae import MAE

_TORCH_BATCH_AXIS = ("cls_token", "mask_token", "pos_embed")


def canonical_rule(path, leaf) -> bool:
    name = jax.tree_util.keystr(path, simple=True, separator=".")
    torch_ndim = leaf.ndim + (path[-1].name in _TORCH_BATCH_AXIS)
    return not (torch_ndim == 1 or name.endswith("bias"))


@pytest.mark.parametrize("method", [
    MAE(backbone=vitcore.get_config("vit-test"), total_steps=10, decoder="mae-decoder-tiny", decoder_width=64),
    DINO(backbone=vitcore.get_config("vit-test"), total_steps=10, out_dim=64, hidden_dim=32, bottleneck_dim=16,
         num_local_crops=0),
], ids=["mae", "dino"])
def test_mask_is_the_canonical_rule(method):
    trainable = eqx.filter_eval_shape(lambda k: method.init(key=k)[0], jax.random.key(0))
    trainable = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), trainable)
    params = eqx.filter(trainable, eqx.is_array)
    expected = jax.tree_util.tree_map_with_path(canonical_rule, params)
    ours = method.weight_decay_mask(trainable)
    assert jax.tree.structure(ours) == jax.tree.structure(expected)
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    differ = [p for p, a, b in zip(paths, jax.tree.leaves(ours), jax.tree.leaves(expected), strict=True) if a != b]
    assert differ == []
    decayed = {p for p, d in zip(paths, jax.tree.leaves(ours), strict=True) if d}
    tokens = {".encoder.cls_token", ".decoder.mask_token"} if method.name == "mae" else \
        {".backbone.cls_token", ".backbone.pos_embed"}
    assert tokens <= decayed  # what the backbones' default rule leaves undecayed

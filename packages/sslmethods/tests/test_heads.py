"""sslmethods.blocks.heads against float64 numpy re-derivations of the canonical heads (SimCLR, BYOL, DINO)."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import vitcore
from sslmethods.blocks.heads import DINOHead, MLPHead, byol_mlp, simclr_projector


def _np(x):
    return np.asarray(x, np.float64)


def _linear(layer, x):
    return x @ _np(layer.weight).T + _np(layer.bias)


def _np_norm(x, kind, norm):
    if kind == "none":
        return x
    axis = -1 if kind == "layer" else 0
    mean = x.mean(axis=axis, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axis, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * _np(norm.scale) + _np(norm.bias)


def _np_mlp(head, x, kind):
    for layer, norm in zip(head.layers[:-1], head.norms, strict=True):
        x = _np_norm(_linear(layer, x), kind, norm)
        if head.activation == "relu":
            x = np.maximum(x, 0.0)
        else:
            x = 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
    return _linear(head.layers[-1], x)


@eqx.filter_jit
def _apply(head, x):
    return head(x)


def _perturb(module, key, scale=0.3):
    """Random non-trivial parameters (norm scales/offsets away from 1/0) so the references test every term."""
    leaves, treedef = jax.tree.flatten(module)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(treedef, [leaf + scale * jax.random.normal(k, leaf.shape, leaf.dtype)
                                        for leaf, k in zip(leaves, keys, strict=True)])


@pytest.mark.parametrize("norm", ["layer", "batch", "none"])
def test_byol_mlp_matches_numpy(norm):
    head = _perturb(byol_mlp(12, key=jax.random.key(0), hidden_dim=20, out_dim=6, norm=norm), jax.random.key(1))
    x = jax.random.normal(jax.random.key(2), (5, 12), jnp.float32)
    assert [layer.weight.shape for layer in head.layers] == [(20, 12), (6, 20)]
    np.testing.assert_allclose(_np(_apply(head, x)), _np_mlp(head, _np(x), norm), rtol=1e-5, atol=1e-5)


def test_batch_norm_couples_examples_and_layer_norm_does_not():
    x = jax.random.normal(jax.random.key(3), (6, 8), jnp.float32)
    for norm, coupled in (("batch", True), ("layer", False)):
        head = byol_mlp(8, key=jax.random.key(0), hidden_dim=16, out_dim=4, norm=norm)
        changed = x.at[5].add(3.0)
        delta = jnp.max(jnp.abs(_apply(head, changed)[:5] - _apply(head, x)[:5]))
        assert (float(delta) > 1e-4) == coupled


def test_simclr_projector_layout():
    head = simclr_projector(24, key=jax.random.key(0))
    assert [layer.weight.shape for layer in head.layers] == [(24, 24), (24, 24), (128, 24)]
    assert head.activation == "relu" and len(head.norms) == 2
    small = simclr_projector(24, key=jax.random.key(0), hidden_dim=8, out_dim=4, num_layers=2, norm="batch")
    assert [layer.weight.shape for layer in small.layers] == [(8, 24), (4, 8)]
    x = jax.random.normal(jax.random.key(1), (7, 24), jnp.float32)
    np.testing.assert_allclose(_np(_apply(small, x)), _np_mlp(small, _np(x), "batch"), rtol=1e-5, atol=1e-5)


def test_dino_head_matches_numpy_and_defaults():
    head = _perturb(DINOHead(16, 40, key=jax.random.key(0), hidden_dim=24, bottleneck_dim=8), jax.random.key(1))
    x = jax.random.normal(jax.random.key(2), (3, 16), jnp.float32)
    z = _np_mlp(head.mlp, _np(x), "none")
    z = z / np.linalg.norm(z, axis=-1, keepdims=True)
    v = _np(head.last_layer.weight)
    expected = z @ (v / np.linalg.norm(v, axis=1, keepdims=True)).T
    np.testing.assert_allclose(_np(_apply(head, x)), expected, rtol=1e-5, atol=1e-5)
    # Output is a cosine (|z| = 1, |w_k| = 1): bounded by 1.
    assert float(jnp.max(jnp.abs(_apply(head, x)))) <= 1.0 + 1e-6
    shapes = jax.eval_shape(lambda k: DINOHead(768, key=k), jax.random.key(0))
    assert [layer.weight.shape for layer in shapes.mlp.layers] == [(2048, 768), (2048, 2048), (256, 2048)]
    assert shapes.last_layer.weight.shape == (65_536, 256)


def test_dino_last_layer_gain_is_fixed_to_one():
    head = DINOHead(8, 12, key=jax.random.key(0), hidden_dim=16, bottleneck_dim=4)
    x = jax.random.normal(jax.random.key(1), (4, 8), jnp.float32)
    scaled = eqx.tree_at(lambda h: h.last_layer.weight, head, head.last_layer.weight * 7.0)
    np.testing.assert_allclose(np.asarray(_apply(scaled, x)), np.asarray(_apply(head, x)), rtol=1e-5, atol=1e-6)
    # The gradient of v is orthogonal to v (the output does not depend on |v|).
    grad = eqx.filter_jit(jax.grad(lambda h: jnp.sum(jnp.sin(h(x)))))(head).last_layer.weight
    radial = jnp.sum(grad * head.last_layer.weight, axis=1)
    np.testing.assert_allclose(np.asarray(radial), 0.0, atol=1e-6)


def test_weight_decay_mask_decays_matmuls_only():
    head = DINOHead(8, 12, key=jax.random.key(0), hidden_dim=16, bottleneck_dim=4)
    mask = vitcore.weight_decay_mask(head)
    assert all(mask.mlp.layers[i].weight and not mask.mlp.layers[i].bias for i in range(3))
    assert mask.last_layer.weight
    mlp = byol_mlp(8, key=jax.random.key(0), hidden_dim=16, out_dim=4, norm="batch")
    mask = vitcore.weight_decay_mask(mlp)
    assert not mask.norms[0].scale and not mask.norms[0].bias and mask.layers[0].weight


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="norm='group'"):
        byol_mlp(8, key=jax.random.key(0), norm="group")
    with pytest.raises(ValueError, match="out_dim=0"):
        MLPHead(8, (4,), 0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="num_layers=0"):
        DINOHead(8, 4, key=jax.random.key(0), num_layers=0)
    with pytest.raises(ValueError, match="batch of at least 2"):
        byol_mlp(8, key=jax.random.key(0), hidden_dim=4, out_dim=2, norm="batch")(jnp.ones((1, 8)))

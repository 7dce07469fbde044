"""A plain-JAX ViT (no model library) used to check flopmeter's loop handling and analytic formulas."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest


def _layer_norm(x):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + 1e-6)


def _block(x, p, num_heads):
    n, d = x.shape
    h = _layer_norm(x)
    qkv = (h @ p["qkv_w"] + p["qkv_b"]).reshape(n, 3, num_heads, d // num_heads)
    q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
    scores = jnp.einsum("qhc,khc->hqk", q, k) / jnp.sqrt(jnp.float32(d // num_heads))
    attn = jax.nn.softmax(scores, axis=-1)
    out = jnp.einsum("hqk,khc->qhc", attn, v).reshape(n, d)
    x = x + out @ p["proj_w"] + p["proj_b"]
    h = _layer_norm(x)
    return x + jax.nn.gelu(h @ p["fc1_w"] + p["fc1_b"]) @ p["fc2_w"] + p["fc2_b"]


def make_params(*, image_size, patch_size, width, depth, mlp_ratio=4, channels=3, abstract=True):
    """Parameter pytree of a standard ViT (class token, learned positions); abstract -> ShapeDtypeStructs."""
    n = (image_size // patch_size) ** 2
    hidden = width * mlp_ratio
    shapes = {
        "embed_w": (patch_size * patch_size * channels, width),
        "embed_b": (width,),
        "cls": (width,),
        "pos": (n + 1, width),
        "blocks": {
            "qkv_w": (depth, width, 3 * width),
            "qkv_b": (depth, 3 * width),
            "proj_w": (depth, width, width),
            "proj_b": (depth, width),
            "fc1_w": (depth, width, hidden),
            "fc1_b": (depth, hidden),
            "fc2_w": (depth, hidden, width),
            "fc2_b": (depth, width),
        },
    }
    rng = np.random.default_rng(0)

    def leaf(shape):
        if abstract:
            return jax.ShapeDtypeStruct(shape, jnp.float32)
        return jnp.asarray(0.02 * rng.standard_normal(shape), dtype=jnp.float32)

    return jax.tree_util.tree_map(leaf, shapes, is_leaf=lambda s: isinstance(s, tuple))


def vit_forward(params, images, num_heads, patch_size, scan):
    """Batch-first NHWC forward returning the pooled class token; `scan` picks lax.scan or a Python loop."""
    b, hgt, wid, c = images.shape
    p = patch_size
    patches = images.reshape(b, hgt // p, p, wid // p, p, c).transpose(0, 1, 3, 2, 4, 5)
    patches = patches.reshape(b, -1, p * p * c)

    def one(x):
        tokens = x @ params["embed_w"] + params["embed_b"]
        tokens = jnp.concatenate([params["cls"][None], tokens], axis=0) + params["pos"]
        if scan:
            tokens, _ = jax.lax.scan(lambda t, bp: (_block(t, bp, num_heads), None), tokens, params["blocks"])
        else:
            depth = params["blocks"]["qkv_w"].shape[0]
            for i in range(depth):
                tokens = _block(
                    tokens, jax.tree_util.tree_map(lambda a, i=i: a[i], params["blocks"]), num_heads
                )
        return _layer_norm(tokens)[0]

    return jax.vmap(one)(patches)


@pytest.fixture
def plain_vit():
    return types.SimpleNamespace(make_params=make_params, forward=vit_forward, block=_block)

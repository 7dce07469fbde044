"""Online k-nearest-neighbour monitor: weighted cosine kNN on frozen encoder features.

Follows facebookresearch/dino ``eval_knn.py::knn_classifier``: features L2-normalised, the ``k`` most similar
training features vote for their label with weight ``exp(similarity / temperature)`` (k=20, T=0.07 in DINO), the
class with the largest summed weight wins. Used every N steps on a held-out split to watch representation quality
without training a probe.

Example::

    train_f = extract_features(encoder, train_images)
    acc = knn_accuracy(train_f, train_labels, extract_features(encoder, test_images), test_labels, num_classes=10)
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

FeatureFn = Callable[[eqx.Module, Float[Array, "b h w c"]], Float[Array, "b d"]]


def pooled_features(encoder: eqx.Module, images: Float[Array, "b h w c"]) -> Float[Array, "b d"]:
    """The encoder's pooled output (``vitcore.ViT``: cls token or mean of patch tokens after the final norm)."""
    return encoder(images, inference=True).pooled


@eqx.filter_jit
def _features(encoder: eqx.Module, images: Float[Array, "b h w c"], feature_fn: FeatureFn) -> Float[Array, "b d"]:
    return feature_fn(encoder, images).astype(jnp.float32)


def extract_features(
    encoder: eqx.Module, images: Float[ArrayLike, "n h w c"], *, batch_size: int = 256,
    feature_fn: FeatureFn = pooled_features,
) -> Float[Array, "n d"]:
    """Features of ``images`` in batches of ``batch_size`` (the last batch padded, so one compilation)."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}; expected >= 1")
    n = images.shape[0]
    out = []
    for start in range(0, n, batch_size):
        chunk = np.asarray(images[start:start + batch_size], np.float32)
        pad = batch_size - chunk.shape[0] if n > batch_size else 0
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), np.float32)])
        feats = _features(encoder, jnp.asarray(chunk), feature_fn)
        out.append(feats[: feats.shape[0] - pad])
    return jnp.concatenate(out)


@eqx.filter_jit
def knn_predict(
    train_features: Float[Array, "n d"],
    train_labels: Int[Array, " n"],
    test_features: Float[Array, "m d"],
    *,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
) -> Int[Array, " m"]:
    """Predicted labels of ``test_features`` by weighted cosine kNN over ``train_features``."""
    if k < 1 or k > train_features.shape[0]:
        raise ValueError(f"k={k}; expected 1 <= k <= the number of training features ({train_features.shape[0]})")
    train = _normalise(train_features)
    test = _normalise(test_features)
    similarity = test @ train.T
    top_sim, top_idx = jax.lax.top_k(similarity, k)
    weights = jnp.exp(top_sim / jnp.float32(temperature))
    votes = jax.nn.one_hot(train_labels[top_idx], num_classes, dtype=jnp.float32) * weights[..., None]
    return jnp.argmax(jnp.sum(votes, axis=1), axis=-1).astype(jnp.int32)


def _normalise(x: Float[Array, "n d"]) -> Float[Array, "n d"]:
    x = x.astype(jnp.float32)
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), jnp.float32(1e-12))


def knn_accuracy(
    train_features: Float[ArrayLike, "n d"],
    train_labels: Int[ArrayLike, " n"],
    test_features: Float[ArrayLike, "m d"],
    test_labels: Int[ArrayLike, " m"],
    *,
    num_classes: int,
    k: int = 20,
    temperature: float = 0.07,
) -> float:
    """Top-1 accuracy (fraction in [0, 1]) of ``knn_predict`` on the test split."""
    pred = knn_predict(jnp.asarray(train_features), jnp.asarray(train_labels, jnp.int32), jnp.asarray(test_features),
                       num_classes=num_classes, k=k, temperature=temperature)
    return float(np.mean(np.asarray(pred) == np.asarray(test_labels)))

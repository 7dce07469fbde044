"""Weighted cosine kNN against a float64 numpy re-derivation of DINO's eval_knn.knn_classifier."""

import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _engine_toys import ToyClassifier  # noqa: E402
from sslmethods.pretrain.knn import extract_features, knn_accuracy, knn_predict  # noqa: E402


def _dino_knn_numpy(train, train_labels, test, k, temperature, num_classes):
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    test = test / np.linalg.norm(test, axis=1, keepdims=True)
    sim = test @ train.T
    idx = np.argsort(-sim, axis=1)[:, :k]
    dist = np.take_along_axis(sim, idx, axis=1)
    one_hot = np.zeros((test.shape[0], k, num_classes))
    np.put_along_axis(one_hot, train_labels[idx][..., None], 1.0, axis=2)
    probs = np.sum(one_hot * np.exp(dist / temperature)[..., None], axis=1)
    return np.argmax(probs, axis=1)


@pytest.mark.parametrize("k", [1, 5, 20])
def test_matches_dino_reference(k):
    rng = np.random.default_rng(0)
    train = rng.normal(size=(60, 8))
    labels = rng.integers(0, 5, 60)
    test = rng.normal(size=(25, 8))
    pred = knn_predict(jnp.asarray(train, jnp.float32), jnp.asarray(labels, jnp.int32),
                       jnp.asarray(test, jnp.float32), num_classes=5, k=k)
    np.testing.assert_array_equal(np.asarray(pred), _dino_knn_numpy(train, labels, test, k, 0.07, 5))


def test_closed_forms():
    rng = np.random.default_rng(1)
    train = rng.normal(size=(30, 6)).astype(np.float32)
    labels = rng.integers(0, 3, 30)
    # Each query is a scaled copy of a training point: cosine similarity 1 -> 1-NN recovers its label.
    assert knn_accuracy(train, labels, 3.0 * train, labels, num_classes=3, k=1) == 1.0
    with pytest.raises(ValueError, match="k=31"):
        knn_predict(jnp.asarray(train), jnp.asarray(labels, jnp.int32), jnp.asarray(train), num_classes=3, k=31)


def test_extract_features_pads_the_last_batch():
    import jax

    method = ToyClassifier()
    encoder = method.encoder(method.init(key=jax.random.key(0))[0])
    images = np.random.default_rng(2).uniform(size=(20, 8, 8, 1)).astype(np.float32)
    feats = extract_features(encoder, images, batch_size=7)
    np.testing.assert_allclose(np.asarray(feats), np.asarray(encoder(jnp.asarray(images)).pooled), rtol=1e-5,
                               atol=1e-6)

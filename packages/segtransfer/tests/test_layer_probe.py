"""Layer-wise linear probes: per-cell targets by hand, shapes over both backbone families, and a toy where a probe
on a frozen random encoder beats the majority-class prediction."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import vitcore
from segtransfer.layer_probe import ProbeConfig, cell_targets, fit_probe, layer_features, probe_layers, probe_logits
from segtransfer.metrics import confusion_matrix, miou

COLORS = np.array([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.2, 0.9]], np.float32)


def _toy(n, rng, size=32):
    """Grey canvas (class 0) with one coloured square per image, aligned to 8-pixel cells; class = colour + 1."""
    images = 0.5 + 0.05 * rng.standard_normal((n, size, size, 3))
    masks = np.zeros((n, size, size), np.int32)
    for i in range(n):
        c, y, x = rng.integers(0, 3), 8 * rng.integers(0, 2), 8 * rng.integers(0, 2)
        images[i, y:y + 16, x:x + 16] = COLORS[c]
        masks[i, y:y + 16, x:x + 16] = c + 1
    return np.clip(images, 0, 1).astype(np.float32), masks


def test_cell_targets_average_the_labelled_pixels():
    masks = np.array([[[0, 1, 2, 2], [1, 255, 2, 2]]], np.int32)  # 2 x 4 pixels, cells of 2 x 2
    dist, labelled = cell_targets(masks, (1, 2), 3)
    np.testing.assert_allclose(dist[0, 0, 0], [1 / 3, 2 / 3, 0])  # the ignored pixel is left out
    np.testing.assert_allclose(dist[0, 0, 1], [0, 0, 1])
    np.testing.assert_allclose(labelled[0, 0], [0.75, 1.0])
    with pytest.raises(ValueError, match="do not tile a 3x2 feature grid"):
        cell_targets(masks, (3, 2), 3)


@pytest.mark.parametrize("preset", ["vit-test", "nfnet-test"])
def test_layer_features_follow_feature_info(preset):
    encoder = vitcore.create(preset, key=jax.random.key(0))
    images = np.random.default_rng(0).uniform(0, 1, (5, 32, 32, 3)).astype(np.float32)
    features = layer_features(encoder, images, batch_size=4 if preset == "vit-test" else 8)
    assert [f.shape for f in features] == [(5, 32 // f.stride, 32 // f.stride, f.channels)
                                           for f in encoder.feature_info]
    if preset == "vit-test":  # batches of 4 (the last one padded) give the whole batch's maps
        whole = encoder.feature_maps(jnp.asarray(images), range(len(encoder.feature_info)))
        for got, want in zip(features, whole, strict=True):
            np.testing.assert_allclose(got, np.asarray(want), rtol=1e-4, atol=1e-5)


def test_a_probe_on_a_frozen_random_vit_beats_the_majority_class():
    rng = np.random.default_rng(1)
    (train_x, train_y), (eval_x, eval_y) = _toy(96, rng), _toy(48, rng)
    encoder = vitcore.create("vit-test", key=jax.random.key(0))
    config = ProbeConfig(steps=200, lr=0.05)
    scores = probe_layers(encoder, train_x, train_y, eval_x, eval_y, 4, key=jax.random.key(2), config=config)
    assert [s.index for s in scores] == list(range(len(encoder.feature_info)))
    assert [s.depth for s in scores] == [0.5, 1.0] and all(s.stride == 8 for s in scores)
    majority = miou(np.asarray(confusion_matrix(jnp.zeros_like(eval_y), jnp.asarray(eval_y), 4)))["miou"]
    best = max(s.miou for s in scores)
    assert best > majority + 0.3, (best, majority, scores)

    probe = fit_probe(layer_features(encoder, train_x)[0], train_y, 4, key=jax.random.key(3), config=config)
    assert probe.weight.shape == (32, 4) and probe.mean.shape == (32,)
    features = layer_features(encoder, eval_x[:3])[0]
    assert probe_logits(probe, jnp.asarray(features), (32, 32)).shape == (3, 32, 32, 4)

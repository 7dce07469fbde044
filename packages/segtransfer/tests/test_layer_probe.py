"""Layer-wise linear probes: per-cell targets by hand, shapes over both backbone families, a toy where a probe on a
frozen random encoder beats the majority-class prediction, and the layer chosen on a validation split carved from
the training data (its test score reported, the test split never consulted)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import vitcore
from segtransfer.probe.layer_probe import (
    LayerScore,
    ProbeConfig,
    carve_validation,
    cell_targets,
    choose_layer,
    fit_probe,
    layer_features,
    probe_layers,
    probe_logits,
)
from segtransfer.segmentation.metrics import confusion_matrix, miou

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
    chosen = choose_layer(scores)
    assert chosen.miou > majority + 0.3, (chosen, majority, scores)

    probe = fit_probe(layer_features(encoder, train_x)[0], train_y, 4, key=jax.random.key(3), config=config)
    assert probe.weight.shape == (32, 4) and probe.mean.shape == (32,)
    features = layer_features(encoder, eval_x[:3])[0]
    assert probe_logits(probe, jnp.asarray(features), (32, 32)).shape == (3, 32, 32, 4)


def test_the_validation_split_is_carved_from_training_data_deterministically():
    train, val = carve_validation(50, 0.2)
    assert len(val) == 10 and len(train) == 40 and not set(train) & set(val) and set(train) | set(val) == set(range(50))
    again = carve_validation(50, 0.2)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], val)
    assert not np.array_equal(val, np.arange(40, 50))  # a fixed permutation, not the file's tail
    assert len(carve_validation(3, 0.01)[1]) == 1 and len(carve_validation(3, 0.99)[0]) == 1
    with pytest.raises(ValueError, match="val_fraction=0"):
        carve_validation(50, 0.0)


def _layer(index, test, val):
    return LayerScore(index, f"block{index}", 16, 32, (index + 1) / 4, test, 0.5, val, 0.5)


def test_the_chosen_layer_is_the_best_on_validation_not_on_test():
    # the best test layer (3) is not the best validation layer (1): the report gets layer 1's test score
    scores = [_layer(0, 0.20, 0.30), _layer(1, 0.25, 0.42), _layer(2, 0.22, 0.35), _layer(3, 0.31, 0.33)]
    chosen = choose_layer(scores)
    assert chosen.index == 1 and chosen.miou == 0.25
    assert choose_layer([_layer(0, 0.1, 0.4), _layer(1, 0.2, 0.4)]).index == 0  # a tie: the shallower layer
    with pytest.raises(ValueError, match="val_miou"):
        choose_layer([LayerScore(0, "b", 16, 32, 1.0, 0.2, 0.5)])


def test_validation_scores_come_from_the_carved_examples_and_never_from_the_test_split():
    rng = np.random.default_rng(4)
    (train_x, train_y), (eval_x, eval_y) = _toy(40, rng), _toy(16, rng)
    encoder = vitcore.create("vit-test", key=jax.random.key(0))
    config = ProbeConfig(steps=50, lr=0.05)
    key = jax.random.key(5)
    first = probe_layers(encoder, train_x, train_y, eval_x, eval_y, 4, key=key, config=config, val_fraction=0.25)
    # another test split: every test score may change, no validation score and so no choice does
    other_x, other_y = _toy(16, np.random.default_rng(9))
    second = probe_layers(encoder, train_x, train_y, other_x, other_y, 4, key=key, config=config, val_fraction=0.25)
    assert [s.val_miou for s in first] == [s.val_miou for s in second]
    assert [s.miou for s in first] != [s.miou for s in second]
    assert choose_layer(first).index == choose_layer(second).index
    # the validation score by hand: a probe fitted on the other 75% of the training examples, scored on the 25%
    fit_idx, val_idx = carve_validation(40, 0.25)
    features = layer_features(encoder, train_x)[1]
    probe = fit_probe(features[fit_idx], train_y[fit_idx], 4, key=jax.random.fold_in(key, 1), config=config)
    pred = jnp.argmax(probe_logits(probe, jnp.asarray(features[val_idx]), (32, 32)), axis=-1)
    by_hand = miou(np.asarray(confusion_matrix(pred, jnp.asarray(train_y[val_idx]), 4)))["miou"]
    assert first[1].val_miou == pytest.approx(float(by_hand), abs=1e-6)

"""Matcher against a numpy re-derivation of detectron2's Matcher; balanced sampling proportions."""

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from segtransfer.detection import match_boxes, sample_balanced


def _matcher(iou, valid, low, high, low_quality):
    """detectron2 Matcher (thresholds [low, high], labels [0, -1, 1]) on the valid columns, numpy."""
    q = iou[:, valid]
    if q.shape[1] == 0:
        return np.zeros(len(iou), int)
    best = q.max(1)
    labels = np.where(best >= high, 1, np.where(best < low, 0, -1))
    if low_quality:
        per_gt = q.max(0)
        for j in range(q.shape[1]):
            if per_gt[j] > 0:
                labels[q[:, j] == per_gt[j]] = 1
    return labels


@pytest.mark.parametrize("seed", range(3))
def test_match_equals_detectron2_matcher(seed):
    rng = np.random.default_rng(seed)
    iou = np.round(rng.uniform(0, 0.8, (40, 6)), 2).astype(np.float32)  # rounding creates ties for low quality
    iou[:, 2] = np.minimum(iou[:, 2], 0.25)  # an object only reachable through a low-quality match
    valid = np.asarray([True, True, True, False, True, False])
    for low_quality in (False, True):
        matched, labels = match_boxes(jnp.asarray(iou), jnp.asarray(valid), low=0.3, high=0.7,
                                      allow_low_quality=low_quality)
        np.testing.assert_array_equal(np.asarray(labels), _matcher(iou, valid, 0.3, 0.7, low_quality))
        masked = np.where(valid[None], iou, -1)
        np.testing.assert_array_equal(np.asarray(matched), masked.argmax(1))
    _, labels = match_boxes(jnp.asarray(iou), jnp.zeros(6, bool), low=0.3, high=0.7, allow_low_quality=True)
    assert (np.asarray(labels) == 0).all()  # no ground truth: everything is background
    with pytest.raises(ValueError, match="low=0.7, high=0.3"):
        match_boxes(jnp.asarray(iou), jnp.asarray(valid), low=0.7, high=0.3, allow_low_quality=False)


@pytest.mark.parametrize(
    ("num_pos", "num_neg", "want_pos", "want_neg"),
    [(30, 500, 30, 226), (200, 500, 128, 128), (0, 10, 0, 10), (300, 50, 128, 50)],
)
def test_sampling_counts(num_pos, num_neg, want_pos, want_neg):
    labels = np.full(1000, -1, np.int32)
    labels[:num_pos] = 1
    labels[num_pos : num_pos + num_neg] = 0
    labels = np.random.default_rng(0).permutation(labels)
    index, positive, valid = sample_balanced(jnp.asarray(labels), num_samples=256, positive_fraction=0.5, key=jr.key(0))
    index, positive, valid = (np.asarray(x) for x in (index, positive, valid))
    assert positive.sum() == want_pos and (valid & ~positive).sum() == want_neg
    assert valid[: want_pos + want_neg].all() and not valid[want_pos + want_neg :].any()  # packed, positives first
    assert (labels[index[positive]] == 1).all() and (labels[index[valid & ~positive]] == 0).all()
    assert len(set(index[valid].tolist())) == want_pos + want_neg  # no repeats


def test_sampling_is_uniform_over_members():
    labels = np.asarray([1] * 20 + [0] * 40 + [-1] * 40, np.int32)
    draw = jax.jit(jax.vmap(lambda k: sample_balanced(jnp.asarray(labels), num_samples=16, positive_fraction=0.25,
                                                      key=k)))
    index, positive, valid = (np.asarray(x) for x in draw(jr.split(jr.key(1), 4000)))
    pos_counts = np.bincount(index[positive], minlength=100)[:20]
    neg_counts = np.bincount(index[valid & ~positive], minlength=100)[20:60]
    # each positive is picked with probability 4/20, each negative with 12/40; binomial sd ~ 25 and 29
    np.testing.assert_allclose(pos_counts / 4000, 0.2, atol=0.03)
    np.testing.assert_allclose(neg_counts / 4000, 0.3, atol=0.035)
    assert np.bincount(index[valid], minlength=100)[60:].sum() == 0  # ignored never sampled

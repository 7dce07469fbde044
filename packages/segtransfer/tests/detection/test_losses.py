"""The five losses against float64 numpy re-derivations of detectron2's formulas."""

import jax.numpy as jnp
import numpy as np
import pytest
from segtransfer.detection import mask_loss, roi_box_loss, roi_class_loss, rpn_box_loss, rpn_objectness_loss


def _bce(x, t):
    p = 1 / (1 + np.exp(-x))
    return -(t * np.log(p) + (1 - t) * np.log(1 - p))


def test_rpn_losses():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 8)).astype(np.float32) * 3
    positive = rng.uniform(size=(2, 8)) > 0.6
    valid = positive | (rng.uniform(size=(2, 8)) > 0.3)
    expected = _bce(logits.astype(np.float64), positive)[valid].sum() / 16.0
    got = rpn_objectness_loss(jnp.asarray(logits), jnp.asarray(positive), jnp.asarray(valid), 16.0)
    assert float(got) == pytest.approx(expected, rel=1e-5)
    deltas, targets = rng.normal(size=(2, 8, 4)).astype(np.float32), rng.normal(size=(2, 8, 4)).astype(np.float32)
    expected = np.abs(deltas - targets.astype(np.float64))[positive].sum() / 16.0
    assert float(rpn_box_loss(jnp.asarray(deltas), jnp.asarray(targets), jnp.asarray(positive), 16.0)) == pytest.approx(
        expected, rel=1e-5
    )
    # large logits stay finite (the stable form)
    assert np.isfinite(float(rpn_objectness_loss(jnp.asarray([200.0, -200.0]), jnp.asarray([False, True]),
                                                 jnp.ones(2, bool), 2.0)))


def test_roi_losses():
    rng = np.random.default_rng(1)
    r, k = 10, 3
    logits = rng.normal(size=(r, k + 1)).astype(np.float32)
    classes = rng.integers(0, k + 1, r).astype(np.int32)
    valid = np.ones(r, bool)
    valid[-2:] = False
    logp = logits - np.log(np.exp(logits.astype(np.float64)).sum(1, keepdims=True))
    expected = -logp[np.arange(r), classes][valid].mean()
    assert float(roi_class_loss(jnp.asarray(logits), jnp.asarray(classes), jnp.asarray(valid))) == pytest.approx(
        expected, rel=1e-5
    )
    deltas = rng.normal(size=(r, k, 4)).astype(np.float32)
    targets = rng.normal(size=(r, 4)).astype(np.float32)
    fg = (classes < k) & valid
    own = deltas[np.arange(r), np.minimum(classes, k - 1)]
    expected = np.abs(own - targets.astype(np.float64))[fg].sum() / valid.sum()
    got = roi_box_loss(jnp.asarray(deltas), jnp.asarray(classes), jnp.asarray(targets), jnp.asarray(fg),
                       jnp.asarray(valid))
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_mask_loss_uses_the_class_channel_of_foreground_rois():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(5, 4, 4, 3)).astype(np.float32)
    classes = np.asarray([2, 0, 1, 3, 1], np.int32)  # 3 = background
    targets = (rng.uniform(size=(5, 4, 4)) > 0.5).astype(np.float32)
    fg = classes < 3
    own = logits[np.arange(5), :, :, np.minimum(classes, 2)]
    expected = _bce(own.astype(np.float64), targets)[fg].mean()
    got = mask_loss(jnp.asarray(logits), jnp.asarray(classes), jnp.asarray(targets), jnp.asarray(fg))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    assert float(mask_loss(jnp.asarray(logits), jnp.asarray(classes), jnp.asarray(targets), jnp.zeros(5, bool))) == 0.0

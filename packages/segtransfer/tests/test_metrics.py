"""mIoU / aAcc against an independent float64 numpy re-derivation of mmseg's intersect_and_union, and by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from segtransfer.segmentation.metrics import confusion_matrix, miou


def _mmseg_reference(preds, labels, num_classes, ignore_index=255):
    """mmseg's algorithm written out: per image, mask ignored labels, histogram I / P / L, sum over the split."""
    total_i = np.zeros(num_classes)
    total_p = np.zeros(num_classes)
    total_l = np.zeros(num_classes)
    for pred, label in zip(preds, labels, strict=True):
        keep = label != ignore_index
        p, lab = pred[keep], label[keep]
        inter = p[p == lab]
        total_i += np.histogram(inter, bins=num_classes, range=(0, num_classes))[0]
        total_p += np.histogram(p, bins=num_classes, range=(0, num_classes))[0]
        total_l += np.histogram(lab, bins=num_classes, range=(0, num_classes))[0]
    union = total_p + total_l - total_i
    iou = np.full(num_classes, np.nan)
    nz = union > 0
    iou[nz] = total_i[nz] / union[nz]
    return {"miou": np.nanmean(iou), "iou": iou, "aacc": total_i.sum() / total_l.sum()}


def _random_split(rng, num_classes=7, n=5, shape=(9, 11)):
    labels = rng.integers(0, num_classes, size=(n, *shape))
    labels[labels == 3] = 4  # class 3: only ever predicted, never a label -> IoU 0
    labels[rng.random(labels.shape) < 0.2] = 255  # ignored pixels
    preds = np.where(rng.random(labels.shape) < 0.5, labels, rng.integers(0, num_classes, size=labels.shape))
    preds[labels == 255] = rng.integers(0, num_classes, size=int((labels == 255).sum()))
    preds[preds == 5] = 6  # class 5: a label but never predicted
    preds[0, 0, 0] = 3
    labels[0, 0, 0] = 0
    # class 6 is predicted; class 2 becomes empty (neither label nor prediction) -> NaN, skipped by the mean
    labels[labels == 2] = 1
    preds[preds == 2] = 1
    return preds, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_split_matches_mmseg_reference(seed):
    rng = np.random.default_rng(seed)
    preds, labels = _random_split(rng)
    ref = _mmseg_reference(preds, labels, 7)
    # accumulate batch by batch, numpy path
    total = sum(confusion_matrix(p[None], lab[None], 7) for p, lab in zip(preds, labels, strict=True))
    got = miou(total)
    assert np.isnan(got["iou"][2]) and np.isnan(ref["iou"][2])
    assert got["iou"][3] == 0.0 and got["iou"][5] == 0.0
    np.testing.assert_allclose(got["iou"], ref["iou"], rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(got["miou"], ref["miou"], rtol=1e-12)
    np.testing.assert_allclose(got["aacc"], ref["aacc"], rtol=1e-12)
    # JAX path, jitted, int32, same matrix
    cm_jax = jax.jit(confusion_matrix, static_argnums=(2, 3))(jnp.asarray(preds), jnp.asarray(labels), 7, 255)
    assert cm_jax.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(cm_jax), total)


def test_hand_computed_case():
    # label: [[0, 0, 1], [1, 255, 2]], pred: [[0, 1, 1], [2, 0, 2]]; pred 3 never appears, class 3 empty.
    label = np.array([[0, 0, 1], [1, 255, 2]])
    pred = np.array([[0, 1, 1], [2, 0, 2]])
    cm = confusion_matrix(pred, label, num_classes=4)
    np.testing.assert_array_equal(cm[:3, :3], [[1, 1, 0], [0, 1, 1], [0, 0, 1]])
    out = miou(cm)
    # class 0: I=1, U=2+1-1=2 -> 1/2; class 1: I=1, L=2, P=2 -> U=3 -> 1/3; class 2: I=1, L=1, P=2 -> 1/2
    np.testing.assert_allclose(out["iou"][:3], [0.5, 1 / 3, 0.5])
    assert np.isnan(out["iou"][3])
    np.testing.assert_allclose(out["miou"], (0.5 + 1 / 3 + 0.5) / 3)
    np.testing.assert_allclose(out["aacc"], 3 / 5)
    np.testing.assert_allclose(out["acc"][:3], [0.5, 0.5, 1.0])


def test_class_only_predicted_counts_zero():
    label = np.array([0, 0, 0, 0])
    pred = np.array([0, 0, 1, 1])
    out = miou(confusion_matrix(pred, label, num_classes=3))
    np.testing.assert_allclose(out["iou"][:2], [0.5, 0.0])
    assert np.isnan(out["iou"][2])
    assert out["miou"] == pytest.approx(0.25)
    assert out["aacc"] == pytest.approx(0.5)


def test_jax_path_drops_out_of_range_and_numpy_path_raises():
    pred = np.array([0, 1, 5])
    label = np.array([0, 1, 1])
    cm = confusion_matrix(jnp.asarray(pred), jnp.asarray(label), 2)
    np.testing.assert_array_equal(np.asarray(cm), [[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="pred has values"):
        confusion_matrix(pred, label, 2)
    with pytest.raises(ValueError, match="label has values"):
        confusion_matrix(label, pred, 2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="ignore_index"):
        confusion_matrix(np.zeros(3, int), np.zeros(3, int), 10, ignore_index=4)
    with pytest.raises((ValueError, TypeError), match="label"):  # jaxtyping or our check, both name it
        confusion_matrix(np.zeros(3, int), np.zeros(4, int), 10)
    with pytest.raises((ValueError, TypeError), match="confusion"):
        miou(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix(np.zeros(3, int), np.zeros(3, int), 0)

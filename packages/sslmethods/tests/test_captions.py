"""Pseudo-captions (the study's "This is a photo of <label> and <label2> ...")."""


import numpy as np
import pytest
from sslmethods.blocks.captions import batch_captions, pseudo_caption

NAMES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")


def test_wording():
    assert pseudo_caption([7], NAMES) == "This is a photo of sneaker."
    assert pseudo_caption([8, 7], NAMES) == "This is a photo of bag and sneaker."
    assert pseudo_caption([8, 4, 7], NAMES) == "This is a photo of bag, coat and sneaker."


def test_padding_duplicates_and_order():
    assert pseudo_caption(np.asarray([4, -1, 8, -1]), NAMES) == "This is a photo of coat and bag."
    assert pseudo_caption([4, 4, 8, 4], NAMES) == "This is a photo of coat and bag."


def test_at_most_55_characters_dropping_labels_from_the_end():
    text = pseudo_caption([0, 1, 2, 3, 4, 5, 6, 9], NAMES)
    # With a fourth label the caption would be "This is a photo of t-shirt, trouser, pullover and dress." (56).
    assert text == "This is a photo of t-shirt, trouser and pullover."
    for labels in ([0, 1, 2, 3, 4, 5, 6, 9], [9, 9, 5], [2, 2, 2, 0, 1]):
        assert len(pseudo_caption(labels, NAMES)) <= 55


def test_at_most_8_labels():
    names = tuple("abcdefghijkl")
    assert pseudo_caption(list(range(12)), names, max_chars=200) == "This is a photo of a, b, c, d, e, f, g and h."


def test_a_long_single_name_is_cut():
    text = pseudo_caption([0], ("an extraordinarily long class name that never fits in the limit",))
    assert len(text) == 55 and text.startswith("This is a photo of an extraordinarily")


def test_errors():
    with pytest.raises(ValueError, match="no valid"):
        pseudo_caption([-1, -1], NAMES)
    with pytest.raises(ValueError, match="no name"):
        pseudo_caption([12], NAMES)


def test_batch_captions_prefers_the_dataset_caption():
    batch = {
        "image": np.zeros((3, 4, 4, 3), np.float32),
        "caption": np.asarray(["a dog", "", "y" * 60]),
        "labels": np.asarray([[1, -1], [8, 7], [0, -1]], np.int32),
    }
    assert batch_captions(batch, NAMES) == ["a dog", "This is a photo of bag and sneaker.", "y" * 55]
    with pytest.raises(ValueError, match="class_names"):
        batch_captions(batch, None)
    assert batch_captions({"image": batch["image"][:1], "label": np.asarray([3])}, NAMES) == [
        "This is a photo of dress."
    ]

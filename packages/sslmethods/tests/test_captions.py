"""Pseudo-captions (the study's "This is a photo of <label> and <label2> ...") and dataset class names."""

import io

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image
from sslmethods.captions import batch_captions, label_names, pseudo_caption

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


class _Named(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    VERSION = tfds.core.Version("1.0.0")
    url_infos = None

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(4, 4, 3)),
                    "labels": tfds.features.Sequence(tfds.features.ClassLabel(names=["cat", "dog", "hat"])),
                }
            )
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        buffer = io.BytesIO()
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buffer, format="PNG")
        yield 0, {"image": buffer.getvalue(), "labels": [2, 0]}


def test_label_names_from_a_dataset_directory(tmp_path):
    builder = _Named(data_dir=str(tmp_path), file_format="array_record")
    builder.download_and_prepare()
    assert label_names(builder.data_dir) == ("cat", "dog", "hat")

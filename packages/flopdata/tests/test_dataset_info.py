"""flopdata.dataset_info: class names, segmentation class counts and split sizes from a directory's JSON files."""

import re
import shutil

import flopdata
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image


class _Named(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    VERSION = tfds.core.Version("1.0.0")
    url_infos = None

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "labels": tfds.features.Sequence(tfds.features.ClassLabel(names=["cat", "dog", "hat"])),
                }
            ),
            metadata=tfds.core.MetadataDict(segmentation_classes=["background", "cat", "dog"]),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        import io

        buffer = io.BytesIO()
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buffer, format="PNG")
        yield 0, {"image": buffer.getvalue(), "labels": [2, 0]}


@pytest.fixture(scope="module")
def named(tmp_path_factory):
    builder = _Named(data_dir=str(tmp_path_factory.mktemp("named")), file_format="array_record")
    builder.download_and_prepare()
    return builder.data_dir


def test_label_names_from_a_dataset_directory(named, tiny):
    assert flopdata.label_names(named) == ("cat", "dog", "hat")  # from 'labels' when there is no 'label'
    assert flopdata.label_names(tiny) == ("cat", "dog", "hat")  # 'label' first
    assert flopdata.label_names(tiny, feature="labels") == ("0", "1", "2", "3")  # unnamed ClassLabel(num_classes=4)
    message = r"has no ClassLabel feature 'objects/label'; it has \['image', 'label', 'labels'\]"
    with pytest.raises(ValueError, match=message):
        flopdata.label_names(tiny, feature="objects/label")


def test_segmentation_classes_from_either_metadata_key(named, tiny, tmp_path):
    assert flopdata.num_segmentation_classes(named) == 3  # len(segmentation_classes)
    assert flopdata.num_segmentation_classes(tiny) == 3  # num_classes
    plain = shutil.copytree(tiny, tmp_path / "plain")
    (plain / "metadata.json").write_text("{}")
    with pytest.raises(ValueError, match="metadata has neither 'num_classes' nor 'segmentation_classes'"):
        flopdata.num_segmentation_classes(plain)


def test_describe(tiny):
    summary = flopdata.describe(tiny)
    assert summary == flopdata.DatasetSummary(
        directory=str(tiny),
        name="tiny_records",
        features=("image", "label", "labels"),
        split_sizes={"train": 30, "test": 4},
        metadata={"num_classes": 3},
    )


def test_not_a_built_directory(tiny, tmp_path):
    with pytest.raises(ValueError, match=re.escape(f"dataset directory {str(tmp_path / 'nope')!r} does not exist")):
        flopdata.describe(tmp_path / "nope")
    parent = tmp_path / "parent"
    shutil.copytree(tiny, parent / "1.0.0")
    message = f"{str(parent)!r} has no dataset_info.json: it is not a built TFDS dataset directory; its subfolders "
    with pytest.raises(ValueError, match=re.escape(message + "['1.0.0'] are built versions")):
        flopdata.describe(parent)

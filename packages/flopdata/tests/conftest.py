"""Fixtures in the real on-disk formats: fake Fashion-MNIST idx files and a tiny built TFDS directory."""

import io

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

TINY_NAMES = ("cat", "dog", "hat")
TINY_TRAIN = 30


@pytest.fixture(scope="session")
def fake_source(tmp_path_factory, write_idx):
    """Idx files where train items have classes 0-4 and test items classes 5-9 (filled blobs)."""
    folder = tmp_path_factory.mktemp("fake_fmnist")
    rng = np.random.default_rng(0)
    for prefix, classes in (("train", range(5)), ("t10k", range(5, 10))):
        count = 50
        labels = np.asarray([list(classes)[i % 5] for i in range(count)])
        items = np.zeros((count, 28, 28), np.uint8)
        items[:, 4:24, 6:22] = rng.integers(150, 256, (count, 20, 16))
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", items)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


def tiny_image(index):
    """Example i is a 3x5 image whose pixels encode i, so a test can tell which example it got."""
    return (np.arange(15 * 3).reshape(3, 5, 3) + 7 * index).astype(np.uint8)


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


class TinyRecords(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """30 train + 4 test examples: PNG image, named label, label list; metadata num_classes."""

    VERSION = tfds.core.Version("1.0.0")
    url_infos = None  # nothing to download: skip TFDS's checksum-file lookup

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "label": tfds.features.ClassLabel(names=TINY_NAMES),
                    "labels": tfds.features.Sequence(tfds.features.ClassLabel(num_classes=4)),
                }
            ),
            metadata=tfds.core.MetadataDict(num_classes=3),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(TINY_TRAIN), "test": self._generate_examples(4)}

    def _generate_examples(self, count):
        for index in range(count):
            yield index, {"image": _png(tiny_image(index)), "label": index % 3, "labels": [index % 4, 3]}


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """The directory of a TinyRecords build (shared: copy it before corrupting anything)."""
    builder = TinyRecords(data_dir=str(tmp_path_factory.mktemp("tiny")), file_format="array_record")
    builder.download_and_prepare()
    return builder.data_dir


@pytest.fixture(scope="session")
def tiny_pixels():
    """`tiny_image`: the pixels TinyRecords stores for example i."""
    return tiny_image

"""fmnist_objects / fmnist_scenes builders, end to end through tfds.builder_from_directory (no TensorFlow).

`fake_source` (conftest.py): idx files where train items have classes 0-4 and test items classes 5-9.
"""

import flopdata
import numpy as np
import pytest
import tensorflow_datasets as tfds
from flopdata.builders import fmnist_idx
from tensorflow_datasets.proto import tf_example_pb2

REAL = fmnist_idx.DEBIAN_DIR
needs_real = pytest.mark.skipif(
    not (REAL / "train-images-idx3-ubyte.gz").exists(),
    reason=f"Fashion-MNIST idx files not in {REAL} (apt-get install dataset-fashion-mnist)",
)


def _parse(raw):
    example = tf_example_pb2.Example.FromString(raw)
    return {k: list(getattr(f, f.WhichOneof("kind")).value) for k, f in example.features.feature.items()}


def _read(directory, split):
    return tfds.builder_from_directory(str(directory)).as_data_source(split)


def test_caption_wording_and_limit():
    assert fmnist_idx.caption([7]) == "This is a photo of a sneaker."
    assert fmnist_idx.caption([8, 7]) == "This is a photo of a bag and a sneaker."
    assert fmnist_idx.caption([9]) == "This is a photo of an ankle boot."
    assert fmnist_idx.caption([8, 4, 7]) == "This is a photo of a bag, a coat and a sneaker."
    long = fmnist_idx.caption([0, 1, 2, 3, 4, 5, 6, 9])
    assert len(long) <= 55
    # Labels are dropped from the end until the caption fits: 3 of the 8 fit in 55 characters.
    assert long == "This is a photo of a t-shirt, a trouser and a pullover."
    with pytest.raises(ValueError, match="at least one label"):
        fmnist_idx.caption([])


def test_idx_parser_rejects_bad_magic(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x0d\x03" + bytes(12))
    with pytest.raises(ValueError, match="not a uint8 idx file"):
        fmnist_idx.load_split("train", tmp_path)


def test_scenes_use_only_their_split_items_and_annotations_agree(fake_source, tmp_path):
    directory = flopdata.build(
        "fmnist_scenes", data_dir=tmp_path, source=fake_source, num_examples=60, seed=3, image_size=48
    )
    for split, allowed in (("train", set(range(5))), ("test", set(range(5, 10)))):
        source = _read(directory, split)
        assert len(source) == (60 if split == "train" else 10)
        for index in range(len(source)):
            example = source[index]
            labels = [int(v) for v in example["labels"]]
            assert set(labels) <= allowed
            objects = example["objects"]
            object_labels = [int(v) for v in objects["label"]]
            assert set(object_labels) == set(labels) and 1 <= len(object_labels) <= 5
            semantic = example["segmentation_mask"][..., 0]
            assert example["image"].shape == (48, 48, 3)
            areas = {}
            union = np.zeros_like(semantic)
            for box, label, mask in zip(objects["bbox"], object_labels, objects["mask"], strict=True):
                mask = mask[..., 0] > 0
                assert np.all(semantic[mask] == label + 1)  # visible parts carry the class
                union[mask] = label + 1
                rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
                expected = np.asarray([rows[0], cols[0], rows[-1] + 1, cols[-1] + 1]) / 48
                np.testing.assert_allclose(box, expected, atol=1e-6)
                areas[label] = areas.get(label, 0) + int(mask.sum())
            np.testing.assert_array_equal(union, semantic)  # background is exactly the uncovered pixels
            assert labels == sorted(areas, key=lambda c: (-areas[c], c))
            assert example["caption"].decode() == fmnist_idx.caption(labels)


def test_builds_are_deterministic_from_the_seed(fake_source, tmp_path):
    def records(seed, folder):
        directory = flopdata.build(
            "fmnist_objects", data_dir=tmp_path / folder, source=fake_source, num_examples=30, seed=seed
        )
        source = tfds.builder_from_directory(str(directory)).as_data_source(
            "train", deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES
        )
        # Compare parsed features: protobuf may serialise the feature map in a different order per process.
        return [_parse(source[i]) for i in range(len(source))]

    first, again, other = records(1, "a"), records(1, "b"), records(2, "c")
    assert first == again
    assert first != other
    assert records(1, "a") == first  # same options: the existing build is reused
    with pytest.raises(ValueError, match="was built with options"):
        records(2, "a")  # different options in the same place: refused, never silently stale


@needs_real
def test_objects_from_real_fashion_mnist(tmp_path):
    directory = flopdata.build("fmnist_objects", data_dir=tmp_path, num_examples=300, seed=0)
    images, labels = fmnist_idx.load_split("train", REAL)
    assert images.shape == (60000, 28, 28)
    source = _read(directory, "train")
    assert len(source) == 300
    seen = set()
    for index in range(0, 300, 7):
        example = source[index]
        assert example["label"] == labels[example["source_index"]]
        assert example["caption"].decode() == fmnist_idx.caption([int(example["label"])])
        assert example["image"].shape == (64, 64, 3) and example["image"].std() > 10
        seen.add(int(example["label"]))
    assert len(seen) == 10


@needs_real
def test_scenes_from_real_fashion_mnist(tmp_path):
    directory = flopdata.build("fmnist_scenes", data_dir=tmp_path, num_examples=240, seed=0)
    source = _read(directory, "train")
    counts = [len(source[i]["objects"]["label"]) for i in range(len(source))]
    assert len(source) == 240 and min(counts) >= 1 and max(counts) <= 5
    assert np.mean(counts) > 2.5  # 2-5 items, a few occluded away
    assert len(_read(directory, "test")) == 40

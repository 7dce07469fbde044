"""sslmethods.pretrain.data: the pre-training pipeline on a tiny TFDS directory written by the test."""

import io

import grain
import numpy as np
import pytest
import tensorflow_datasets as tfds
from flopdata import DecodedBatches, DecodedSource
from PIL import Image
from sslmethods.pretrain.data import PretrainData, pretrain_loader

NUM = 40


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _colour(index):
    """Example i is a constant image whose colour encodes i (so a batch reveals which examples it holds)."""
    return np.asarray([index * 5, 255 - index * 5, (index * 37) % 256], np.uint8)


def _labels(index):
    return list(range(10))[: 1 + index % 10] if index % 10 != 9 else list(range(10))


class TinySet(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    VERSION = tfds.core.Version("1.0.0")
    url_infos = None  # nothing to download: skip TFDS's checksum-file lookup

    def __init__(self, *, corrupt=(), **kwargs):
        self._corrupt = corrupt
        super().__init__(**kwargs)

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "label": tfds.features.ClassLabel(num_classes=10),
                    "labels": tfds.features.Sequence(tfds.features.ClassLabel(num_classes=10)),
                    "caption": tfds.features.Text(),
                }
            )
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(NUM), "test": self._generate_examples(4)}

    def _generate_examples(self, count):
        for index in range(count):
            image = np.broadcast_to(_colour(index), (6 + index % 3, 9, 3)).copy()
            yield (
                index,
                {
                    "image": b"garbage" if index in self._corrupt else _png(image),
                    "label": index % 10,
                    "labels": _labels(index),
                    "caption": f"example {index}",
                },
            )


def _build(path, **kwargs):
    builder = TinySet(data_dir=str(path), file_format="array_record", **kwargs)
    builder.download_and_prepare()
    return builder.data_dir


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("tiny"))


def _ids(batch):
    """Recover example indices from the constant colours."""
    return [int(round(float(v) * 255 / 5)) for v in batch["image"][:, 0, 0, 0]]


def _take(iterator, count):
    return [next(iterator) for _ in range(count)]


def test_batch_contents(directory):
    loader = pretrain_loader(PretrainData(directory, batch_size=8, image_size=16, num_epochs=1))
    batches = list(loader)
    assert len(batches) == NUM // 8
    batch = batches[0]
    assert batch["image"].shape == (8, 16, 16, 3) and batch["image"].dtype == np.float32
    assert batch["labels"].shape == (8, 8) and batch["labels"].dtype == np.int32
    ids = _ids(batch)
    for row, index in enumerate(ids):
        expected_image = np.broadcast_to(_colour(index) / 255.0, (16, 16, 3))
        np.testing.assert_allclose(batch["image"][row], expected_image, atol=1e-6)
        assert batch["label"][row] == index % 10
        expected = (_labels(index) + [-1] * 8)[:8]
        assert batch["labels"][row].tolist() == expected  # padded with -1; 10 labels -> first 8
        assert batch["caption"][row] == f"example {index}"
    every = sorted(i for b in batches for i in _ids(b))
    assert every == list(range(NUM))  # one epoch = every example exactly once
    assert ids != sorted(ids)  # shuffled


def test_deterministic_from_seed(directory):
    def order(seed):
        config = PretrainData(directory, batch_size=8, image_size=8, seed=seed)
        return [_ids(b) for b in _take(iter(pretrain_loader(config)), 7)]  # crosses an epoch boundary

    assert order(3) == order(3)
    assert order(3) != order(4)


def test_shards_are_disjoint_and_cover(directory):
    seen = []
    for shard in range(2):
        config = PretrainData(
            directory, batch_size=8, image_size=8, num_epochs=1, shard_index=shard, shard_count=2
        )
        batches = list(pretrain_loader(config))
        assert all(b["image"].shape[0] == 4 for b in batches)  # global batch 8 over 2 processes
        seen.append({i for b in batches for i in _ids(b)})
    assert not seen[0] & seen[1] and seen[0] | seen[1] == set(range(NUM))


def test_checkpointed_iterator_resumes_at_the_exact_example(directory):
    config = PretrainData(directory, batch_size=6, image_size=8, seed=11)
    iterator = iter(pretrain_loader(config))
    _take(iterator, 3)
    state = iterator.get_state()
    expected = _take(iterator, 6)  # runs into the second epoch
    resumed = iter(pretrain_loader(config))
    resumed.set_state(state)
    for want, got in zip(expected, _take(resumed, 6), strict=True):
        for key in want:
            np.testing.assert_array_equal(want[key], got[key])


@pytest.mark.slow
def test_worker_processes_are_deterministic(directory):
    # Each grain worker batches its own share of the records, so batches depend on worker_count (not only
    # on the seed); for a fixed worker count they are reproducible and never repeat an example in an epoch.
    config = PretrainData(directory, batch_size=8, image_size=8, num_epochs=1, seed=5, worker_count=2)
    first = [_ids(b) for b in pretrain_loader(config)]
    second = [_ids(b) for b in pretrain_loader(config)]
    assert first == second
    flat = [i for ids in first for i in ids]
    assert len(flat) == len(set(flat)) >= NUM - 2 * 8


def test_errors_name_split_and_example(tmp_path, directory):
    with pytest.raises(ValueError, match=r"split='validation' is not in .*it has \['test', 'train'\]"):
        pretrain_loader(PretrainData(directory, batch_size=4, split="validation"))
    with pytest.raises(ValueError, match="batch_size=0"):
        PretrainData(directory, batch_size=0)
    broken = _build(tmp_path / "broken", corrupt=(17,))
    raw = tfds.builder_from_directory(broken).as_data_source(
        "train", deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES
    )
    # TFDS stores examples in a hashed order: find where the corrupt one landed.
    position = [i for i in range(NUM) if b"garbage" in raw[i]]
    assert len(position) == 1
    loader = pretrain_loader(PretrainData(broken, batch_size=4, shuffle=False, num_epochs=1))
    with pytest.raises(ValueError, match=rf"corrupt image in tiny_set train\[{position[0]}\]"):
        list(loader)


def test_knn_splits_read_the_whole_split_on_every_process(directory, monkeypatch):
    # In a multi-host run the kNN monitor runs the same on every process: each reads the whole split, not its
    # shard (the data pipeline's default). Seen as process 1 of 2, the bank must still hold all 40 examples.
    import jax
    from sslmethods.pretrain import recipes

    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    splits = recipes.knn_splits(directory, image_size=8, bank_size=NUM, query_size=3)
    assert sorted(_ids({"image": splits.train_images})) == list(range(NUM))
    assert splits.test_images.shape == (3, 8, 8, 3) and splits.num_classes == 10


def test_decoded_in_memory_gives_the_streaming_batches(directory):
    # A small split is decoded once and served from memory by default; forced off it streams. Same batches.
    def batches(decoded):
        config = PretrainData(directory, batch_size=8, image_size=8, seed=2, decoded=decoded)
        return _take(iter(pretrain_loader(config)), 7)  # crosses an epoch boundary

    streamed, default, forced = batches(False), batches(None), batches(True)
    # in-process: gathered a batch at a time from memory (flopdata.DecodedBatches); with workers: grain per element
    assert isinstance(pretrain_loader(PretrainData(directory, batch_size=8)), DecodedBatches)
    with_workers = pretrain_loader(PretrainData(directory, batch_size=8, worker_count=1))
    assert isinstance(with_workers, grain.DataLoader) and isinstance(with_workers._data_source, DecodedSource)
    for want, got, also in zip(streamed, default, forced, strict=True):
        for key in want:
            assert want[key].dtype == got[key].dtype
            np.testing.assert_array_equal(want[key], got[key])
            np.testing.assert_array_equal(want[key], also[key])

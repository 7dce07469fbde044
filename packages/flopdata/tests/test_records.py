"""flopdata.records: raw records of a built TFDS directory, parsed without TensorFlow, and errors that name the
file, split and index (`tiny` is a 30 + 4 example build from conftest.py)."""

import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from flopdata import RecordSource, decode_rgb, parse_example


def _copy(tiny, tmp_path):
    return Path(shutil.copytree(tiny, tmp_path / "copy"))


def _shard(directory):
    (path,) = sorted(Path(directory).glob("*-train.array_record-*"))
    return path


def test_records_parse_to_what_tfds_decodes(tiny, tiny_pixels):
    source = RecordSource(tiny, "train")
    assert len(source) == 30 and source.name == "tiny_records"
    assert source.feature_names == ("image", "label", "labels") and source.metadata == {"num_classes": 3}
    decoded = tfds.builder_from_directory(tiny).as_data_source("train")  # TFDS's own decoding, the reference
    for index in (0, 17, 29):
        element = source[index]
        assert element["index"] == index
        fields = parse_example(element["record"], where=source.describe(index))
        image = decode_rgb(fields["image"][0], where=source.describe(index))
        np.testing.assert_array_equal(image, decoded[index]["image"])
        assert fields["label"] == [decoded[index]["label"]]
        assert fields["labels"] == list(decoded[index]["labels"])
        # TFDS stores examples in a hashed order; the pixels tell which example this is
        original = int(image[0, 0, 0]) // 7
        np.testing.assert_array_equal(image, tiny_pixels(original))
        assert fields["label"] == [original % 3]
    assert source.describe(3) == f"tiny_records train[3] ({tiny})"
    assert source.file_of(29) == str(_shard(tiny))


def test_source_pickles_without_open_files_and_keeps_its_repr(tiny):
    source = RecordSource(tiny, "test")
    source[0]  # opens the array_record reader
    clone = pickle.loads(pickle.dumps(source))
    assert repr(clone) == repr(source) == f"RecordSource(directory={tiny!r}, split='test')"
    assert clone[3]["record"] == source[3]["record"]


def test_unknown_split_and_bad_records(tiny):
    with pytest.raises(ValueError, match=r"split='validation' is not in .*it has \['test', 'train'\]"):
        RecordSource(tiny, "validation")
    with pytest.raises(ValueError, match=r"unreadable record tiny_records train\[4\] \(somewhere\): "):
        parse_example(b"\xff\xff not a proto", where="tiny_records train[4] (somewhere)")
    with pytest.raises(ValueError, match=r"corrupt image in ex 1: "):
        decode_rgb(b"garbage", where="ex 1")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda path: path.write_text('{"name": "tiny_records", "splits": ['), r"Failed to load JSON|Expecting"),
        (lambda path: path.write_text(""), r"Expecting value"),
        (lambda path: path.write_text("[1, 2]"), r"a JSON list, not an object"),
    ],
)
def test_corrupt_dataset_info_names_the_file(tiny, tmp_path, damage, reason):
    directory = _copy(tiny, tmp_path)
    damage(directory / "dataset_info.json")
    expected = re.escape(f"{directory / 'dataset_info.json'} is not a valid TFDS dataset_info.json (")
    with pytest.raises(ValueError, match=expected + f".*(?:{reason})"):
        RecordSource(directory, "train")


def test_corrupt_features_json_names_the_file(tiny, tmp_path):
    directory = _copy(tiny, tmp_path)
    (directory / "features.json").write_text("{")
    message = f"{directory / 'features.json'} is not a valid TFDS features.json ("
    with pytest.raises(ValueError, match=re.escape(message)):
        RecordSource(directory, "train")


def test_missing_or_empty_array_record_file_is_found_before_reading(tiny, tmp_path):
    directory = _copy(tiny, tmp_path)
    shard = _shard(directory)
    shard.write_bytes(b"")
    with pytest.raises(ValueError, match=re.escape(f"{shard} is not a valid array_record file (0 bytes)")):
        RecordSource(directory, "train")
    shard.unlink()
    message = f"{shard} is missing: split 'train' of {str(directory)!r} lists it"
    with pytest.raises(ValueError, match=re.escape(message)):
        RecordSource(directory, "train")


@pytest.mark.parametrize("keep_bytes", [100, 70_000])  # under and over array_record's 64 KiB minimum
def test_truncated_array_record_file_names_file_and_example(tiny, tmp_path, keep_bytes):
    directory = _copy(tiny, tmp_path)
    shard = _shard(directory)
    with open(shard, "r+b") as handle:
        handle.truncate(keep_bytes)
    source = RecordSource(directory, "train")  # files are opened lazily, on the first read
    expected = re.escape(f"{shard} is not a valid array_record file (") + r".+\); reading " + re.escape(
        f"tiny_records train[5] ({directory})"
    )
    with pytest.raises(ValueError, match=expected):
        source[5]


def _batches(source, options, count):
    import grain

    sampler = grain.samplers.IndexSampler(num_records=len(source), shard_options=grain.sharding.NoSharding(),
                                          shuffle=True, num_epochs=None, seed=3)
    loader = grain.DataLoader(data_source=source, sampler=sampler, worker_count=0,
                              operations=[grain.transforms.Batch(batch_size=4, drop_remainder=True)],
                              **({} if options is None else {"read_options": options}))
    it = iter(loader)
    return [[int(i) for i in next(it)["index"]] for _ in range(count)]


def test_read_options_keep_grains_order_and_check_the_batch_size(tiny):
    from flopdata import read_options

    options = read_options(4)
    assert (options.num_threads, options.prefetch_buffer_size) == (2, 16)
    assert read_options(64).prefetch_buffer_size == 128  # two batches ahead
    source = RecordSource(tiny, "train")
    # Same examples in the same order as grain's defaults: the options change only how far ahead it reads.
    assert _batches(source, options, 10) == _batches(source, None, 10)
    with pytest.raises(ValueError, match=r"batch_size=0; expected a positive int"):
        read_options(0)


def test_a_loader_state_resumes_after_its_dataset_moved_with_the_run(tiny, tmp_path):
    import grain
    from flopdata import RecordLoader, same_records

    def loader(where, split="train"):
        source = RecordSource(where, split)
        sampler = grain.samplers.IndexSampler(num_records=len(source), shuffle=True, seed=3, num_epochs=None,
                                              shard_options=grain.sharding.NoSharding())
        return RecordLoader(data_source=source, sampler=sampler, operations=[], worker_count=0)

    first = iter(loader(tiny))
    for _ in range(5):
        next(first)
    state = first.get_state()
    expected = [next(first)["index"] for _ in range(4)]
    root = Path(tiny).parents[1]  # <data dir>/<name>/<version>
    shutil.copytree(root, tmp_path / "moved")  # the run's data, copied (cp -r) with it
    again = iter(loader(str(tmp_path / "moved" / Path(tiny).relative_to(root))))
    again.set_state(state)
    assert [next(again)["index"] for _ in range(4)] == expected
    other = tmp_path / "other" / "renamed" / Path(tiny).name  # the same records under another dataset's name
    shutil.copytree(tiny, other)
    with pytest.raises(ValueError, match="DataSource in checkpoint does not match"):
        iter(loader(str(other))).set_state(state)
    assert same_records("RecordSource(directory='/x/data/fmnist_objects/1.0.0', split='train')",
                        "RecordSource(directory='/y/d/fmnist_objects/1.0.0', split='train')")
    assert not same_records("RecordSource(directory='/x/data/fmnist_objects/1.0.0', split='train')",
                            "RecordSource(directory='/x/data/fmnist_scenes/1.0.0', split='train')")

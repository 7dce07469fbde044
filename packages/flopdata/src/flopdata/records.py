"""Reading TFDS-directory records (array_record files) without TensorFlow, with errors that name the example.

TFDS stores each example as a serialized `tf.train.Example`; TFDS ships that proto (`tensorflow_datasets.proto`)
so it parses without TensorFlow. We read raw bytes and parse them here instead of letting TFDS decode every
feature, so a pipeline decodes only the fields it uses (a scene's per-object masks are never decoded for
pre-training) and a bad example raises a ValueError naming the dataset, split, index and file:

    source = RecordSource("data/fmnist_scenes/1.0.0", "train")   # a grain random-access data source
    element = source[12]                                         # {"record": bytes, "index": 12}
    fields = parse_example(element["record"], where=source.describe(12))
    image = decode_rgb(fields["image"][0], where=source.describe(12))
"""

from __future__ import annotations

import bisect
import re
from pathlib import Path

import grain
import tensorflow_datasets as tfds
from google.protobuf.message import DecodeError
from tensorflow_datasets.proto import tf_example_pb2

from .dataset_info import open_builder, short_reason

__all__ = ["RecordLoader", "RecordSource", "allow_worker_processes", "parse_example", "read_options",
           "same_records"]

READ_THREADS = 2
"""Threads that read and decode records for an in-process grain loader (``worker_count=0``)."""


def allow_worker_processes() -> None:
    """Call before starting grain worker processes. They read absl flags; outside an absl app (plain scripts,
    pytest) nobody parsed them, so mark them parsed with their defaults (what `absl.app.run` would do with an
    empty command line)."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def read_options(batch_size: int):
    """grain ``ReadOptions`` for an in-process loader (``worker_count=0``) whose batches hold ``batch_size``
    examples: `READ_THREADS` reading threads and a prefetch buffer of two batches (at least 16 elements).

    grain's defaults (16 threads, a 500-element buffer) cost more CPU than the decoding itself on a small
    machine: on every element its iterator polls each buffered future. Measured on the 2-core CPU machine,
    64 fmnist_objects images per batch at 32 px: 29 ms of CPU per batch with the defaults, 12 ms with these
    (the same batches, in the same order: the read options change only how far ahead grain reads)."""
    import grain

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}; expected a positive int")
    return grain.ReadOptions(num_threads=READ_THREADS, prefetch_buffer_size=max(2 * batch_size, 16))


def parse_example(raw: bytes, *, where: str) -> dict[str, list]:
    """A serialized tf.train.Example as {flat feature name: list of values} (bytes, ints or floats); ValueError
    naming `where` (e.g. `RecordSource.describe(index)`) when the bytes are not one."""
    try:
        example = tf_example_pb2.Example.FromString(raw)
    except DecodeError as error:
        raise ValueError(f"unreadable record {where}: {error}") from error
    fields = {}
    for key, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        fields[key] = list(getattr(feature, kind).value) if kind else []
    return fields


class RecordSource:
    """A grain random-access source over one split of a built TFDS directory: element i is {"record", "index"}.

    The constructor reads the directory's JSON files and checks the split's array_record files exist and are
    not empty; the files themselves are opened lazily, so the source pickles cheaply into grain worker
    processes. A file that does not read (truncated, corrupt) raises a ValueError naming it and the example.
    """

    def __init__(self, directory: str | Path, split: str):
        self.directory = str(directory)
        self.split = split
        info = open_builder(self.directory).info
        if split not in info.splits:
            raise ValueError(f"split={split!r} is not in {self.directory!r}; it has {sorted(info.splits)}")
        self.name = info.name
        self.feature_names = tuple(sorted(info.features.keys()))
        self.metadata = dict(info.metadata or {})
        self._shapes = {name: getattr(feature, "shape", None) for name, feature in info.features.items()}
        self._length = int(info.splits[split].num_examples)
        self._files, self._starts = [], []
        start = 0
        for instruction in info.splits[split].file_instructions:
            path = Path(instruction.filename)
            if not path.is_file():
                raise ValueError(f"{path} is missing: split {split!r} of {self.directory!r} lists it")
            if path.stat().st_size == 0:
                raise ValueError(f"{path} is not a valid array_record file (0 bytes)")
            self._files.append(str(path))
            self._starts.append(start)
            start += int(instruction.take)
        self._records = None

    def _open(self):
        if self._records is None:
            self._records = open_builder(self.directory).as_data_source(
                self.split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES
            )
        return self._records

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index) -> dict:
        index = int(index)
        if not 0 <= index < self._length:
            raise IndexError(f"index={index}; {self.name} {self.split} has {self._length} examples")
        try:
            record = self._open()[index]
        except (RuntimeError, OSError) as error:  # array_record reports corrupt files as RuntimeError
            raise ValueError(
                f"{self.file_of(index)} is not a valid array_record file ({short_reason(error)}); reading "
                f"{self.describe(index)}"
            ) from error
        return {"record": record, "index": index}

    def fixed_shape(self, feature: str) -> tuple[int, ...] | None:
        """The shape every example's `feature` has (e.g. (64, 64, 3) for fmnist images), None when it varies
        or is not one array (ADE20K images, sequences)."""
        shape = self._shapes.get(feature)
        if not isinstance(shape, tuple) or not all(isinstance(n, int) for n in shape):
            return None
        return shape

    def file_of(self, index: int) -> str:
        """The array_record file that holds example `index` of the split."""
        return self._files[bisect.bisect_right(self._starts, int(index)) - 1]

    def describe(self, index: int) -> str:
        """'fmnist_scenes train[12] (/path)': how errors name an example."""
        return f"{self.name} {self.split}[{index}] ({self.directory})"

    def __repr__(self) -> str:
        # grain checks a restored iterator state against repr(data_source): keep it stable across processes.
        return f"RecordSource(directory={self.directory!r}, split={self.split!r})"

    def __getstate__(self):
        return {**self.__dict__, "_records": None}


_REPR = re.compile(r"^RecordSource\(directory='(?P<directory>.*)', split='(?P<split>[^']*)'\)$")


def same_records(recorded: str, current: str) -> bool:
    """Whether two ``repr``s of record sources (a checkpointed loader state's and this loader's) name the same
    split of the same dataset, also when its folder moved with the run (a sweep folder moved or copied whole):
    the same split and the same ``<name>/<version>`` folder. Where the dataset lives is the run's own check (its
    recorded dataset path, `runloop.open_run`), so a different build at another place never gets this far."""
    if recorded == current:
        return True
    a, b = _REPR.match(recorded), _REPR.match(current)
    return bool(a and b and a["split"] == b["split"]
                and Path(a["directory"]).parts[-2:] == Path(b["directory"]).parts[-2:])


class RecordLoader(grain.DataLoader):
    """``grain.DataLoader`` whose restored state may name its records at another place (`same_records`): grain
    compares ``repr(data_source)``, which holds the dataset's folder, so a run moved with its data would not
    resume otherwise."""

    def _validate_state(self, state):  # grain's check (on the decoded state), this loader's source put in first
        state = dict(state)
        current = repr(self._data_source)
        if isinstance(state.get("data_source"), str) and same_records(state["data_source"], current):
            state["data_source"] = current
        return super()._validate_state(state)

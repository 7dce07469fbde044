"""Reading TFDS-directory records (array_record files) without TensorFlow, with errors that name the example.

TFDS stores each example as a serialized `tf.train.Example`; TFDS ships that proto
(`tensorflow_datasets.proto`)
so it parses without TensorFlow. We read raw bytes and parse them here instead of letting TFDS decode every
feature, so a pipeline decodes only the fields it uses (a scene's per-object masks are never decoded for
pre-training) and a bad example raises a ValueError naming the dataset, split and index.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from jaxtyping import UInt8
from PIL import Image, UnidentifiedImageError
from tensorflow_datasets.proto import tf_example_pb2


def allow_worker_processes() -> None:
    """Grain's worker processes read absl flags; outside an absl app (plain scripts, pytest) nobody parsed
    them, so mark them parsed with their defaults (what `absl.app.run` would do with an empty command
    line)."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def parse_example(raw: bytes) -> dict[str, list]:
    """A serialized tf.train.Example as {flat feature name: list of values} (bytes, ints or floats)."""
    example = tf_example_pb2.Example.FromString(raw)
    fields = {}
    for key, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        fields[key] = list(getattr(feature, kind).value) if kind else []
    return fields


def decode_rgb(encoded: bytes, *, where: str) -> UInt8[np.ndarray, "h w 3"]:
    """JPEG/PNG bytes -> uint8 [h, w, 3]; ValueError naming `where` when the bytes do not decode."""
    try:
        with Image.open(io.BytesIO(encoded)) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"corrupt image in {where}: {error}") from error


def resize_rgb(image: UInt8[np.ndarray, "h w 3"], height: int, width: int) -> UInt8[np.ndarray, "_ _ 3"]:
    """uint8 [h, w, 3] -> uint8 [height, width, 3], bilinear with antialiasing when shrinking (PIL)."""
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


class RecordSource:
    """A grain random-access source over one split of a TFDS directory: element i is {"record", "index"}.

    Opens the array_record files lazily, so the source pickles cheaply into grain worker processes.
    """

    def __init__(self, directory: str | Path, split: str):
        self.directory = str(directory)
        self.split = split
        builder = tfds.builder_from_directory(self.directory)
        if split not in builder.info.splits:
            raise ValueError(
                f"split={split!r} is not in {self.directory!r}; it has {sorted(builder.info.splits)}"
            )
        self.name = builder.info.name
        self.feature_names = tuple(builder.info.features.keys())
        self.metadata = dict(builder.info.metadata or {})
        self._length = builder.info.splits[split].num_examples
        self._records = None

    def _open(self):
        if self._records is None:
            builder = tfds.builder_from_directory(self.directory)
            self._records = builder.as_data_source(
                self.split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES
            )
        return self._records

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index) -> dict:
        return {"record": self._open()[int(index)], "index": int(index)}

    def describe(self, index: int) -> str:
        """'fmnist_scenes train[12] (/path)': how errors name an example."""
        return f"{self.name} {self.split}[{index}] ({self.directory})"

    def __repr__(self) -> str:
        # grain checks a restored iterator state against repr(data_source): keep it stable across processes.
        return f"RecordSource(directory={self.directory!r}, split={self.split!r})"

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_records"] = None
        return state

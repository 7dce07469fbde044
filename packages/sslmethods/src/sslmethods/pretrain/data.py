"""The pre-training input pipeline: a TFDS directory -> shuffled, per-process, decoded, resized numpy batches.

Works for every set `flopdata.build` (`tools/build_dataset.py`) writes, and any TFDS directory in array_record
format with an `image` and optional `label` / `labels` / `caption`; records are read with `flopdata.RecordSource`.
Method-specific augmentation happens later, on device.

    loader = pretrain_loader(PretrainData("data/fmnist_scenes/1.0.0", batch_size=256))
    iterator = iter(loader)
    batch = next(iterator)     # {"image": float32 [256, 64, 64, 3], "labels": int32 [256, 8], "caption"}
    state = iterator.get_state()   # bytes; save with the training checkpoint
    iterator.set_state(state)      # resumes at the exact next example

Each batch holds `image` float32 [b, s, s, 3] in [0, 1], and when the dataset has them: `label` int32 [b],
`labels` int32 [b, 8] (padded with -1; lists longer than 8 keep the first 8), `caption` unicode [b].
"""

from __future__ import annotations

import dataclasses

import grain
import jax
import numpy as np
from flopdata import (
    DecodedBatches,
    DecodedSource,
    RecordLoader,
    RecordSource,
    allow_worker_processes,
    decode_rgb,
    parse_example,
    read_options,
    resize_image,
    use_decoded,
)

MAX_LABELS = 8
PAD_LABEL = -1


@dataclasses.dataclass(frozen=True)
class PretrainData:
    """Where the data is and how it is served.

    directory: a TFDS dataset directory (the versioned folder, e.g. `data/fmnist_scenes/1.0.0`).
    batch_size: the *global* batch; each of `shard_count` processes gets `batch_size // shard_count`.
    num_epochs: None repeats forever; each epoch is a fresh shuffle from `seed`.
    worker_count: grain worker processes decoding in parallel (0 = decode in the calling thread).
    shard_index / shard_count: default to `jax.process_index()` / `jax.process_count()`.
    decoded: serve the split decoded from memory (`flopdata.DecodedSource`: decoded once per process, the same
      batches as streaming); None = when its decoded size is below `flopdata.DECODE_LIMIT_BYTES`.
    """

    directory: str
    batch_size: int
    split: str = "train"
    image_size: int = 64
    seed: int = 0
    shuffle: bool = True
    num_epochs: int | None = None
    worker_count: int = 0
    shard_index: int | None = None
    shard_count: int | None = None
    decoded: bool | None = None

    def __post_init__(self):
        if self.decoded is not None and not isinstance(self.decoded, bool):
            raise ValueError(f"decoded={self.decoded!r}; expected True, False or None (decide by size)")
        for name in ("batch_size", "image_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}; expected a positive integer")
        if self.worker_count < 0:
            raise ValueError(f"worker_count={self.worker_count}; expected >= 0")
        if self.num_epochs is not None and self.num_epochs < 1:
            raise ValueError(f"num_epochs={self.num_epochs}; expected None (forever) or >= 1")
        if (self.shard_index is None) != (self.shard_count is None):
            raise ValueError(
                f"give both shard_index and shard_count or neither, got {self.shard_index=}, "
                f"{self.shard_count=}"
            )


class DecodePretrain(grain.transforms.Map):
    """Raw record -> {"image", and "label" / "labels" / "caption" when the dataset has them}."""

    def __init__(self, source: RecordSource, image_size: int):
        if "image" not in source.feature_names:
            raise ValueError(f"{source.directory!r} has no 'image' feature; it has {source.feature_names}")
        self.source = source
        self.image_size = image_size
        self.fields = tuple(name for name in ("label", "labels", "caption") if name in source.feature_names)

    def map(self, element: dict) -> dict:
        index = element["index"]
        where = self.source.describe(index)
        fields = parse_example(element["record"], where=where)
        image = decode_rgb(fields["image"][0], where=where)
        image = resize_image(image, self.image_size, self.image_size)
        out = {"image": image.astype(np.float32) / np.float32(255.0)}
        if "label" in self.fields:
            out["label"] = np.int32(fields["label"][0])
        if "labels" in self.fields:
            labels = np.full((MAX_LABELS,), PAD_LABEL, np.int32)
            values = fields.get("labels", [])[:MAX_LABELS]
            labels[: len(values)] = values
            out["labels"] = labels
        if "caption" in self.fields:
            out["caption"] = np.str_(fields["caption"][0].decode("utf-8"))
        return out

    def example_bytes(self) -> int:
        """Bytes of one decoded example (what holding the split in memory costs per example)."""
        caption = 4 * 64 if "caption" in self.fields else 0  # numpy unicode: 4 bytes a character
        return 4 * (self.image_size * self.image_size * 3 + MAX_LABELS + 1) + caption


def _shard(config: PretrainData) -> grain.sharding.ShardOptions:
    if config.shard_count is None:
        index, count = jax.process_index(), jax.process_count()
    else:
        index, count = config.shard_index, config.shard_count
    if not 0 <= index < count:
        raise ValueError(f"shard_index={index}; expected 0 <= shard_index < shard_count={count}")
    if config.batch_size % count:
        raise ValueError(f"batch_size={config.batch_size} does not split over {count} processes")
    return grain.sharding.ShardOptions(shard_index=index, shard_count=count, drop_remainder=True)


def pretrain_loader(config: PretrainData) -> grain.DataLoader | DecodedBatches:
    """A loader for `config` (a grain DataLoader, or `flopdata.DecodedBatches` for a split served from memory
    in-process); `iter()` it for batches, `get_state`/`set_state` to checkpoint.

    Deterministic given `seed`, shard and `worker_count` (grain workers each batch their own share of the
    records, so changing the worker count changes batch composition). Incomplete final batches are dropped so
    every step has the same shape. Small splits are decoded once per process and served from memory
    (`config.decoded`), in-process (``worker_count=0``) a batch at a time (`flopdata.DecodedBatches`); the
    batches, and the iterator states, are the same either way.
    """
    source = RecordSource(config.directory, config.split)
    shard = _shard(config)
    decode = DecodePretrain(source, config.image_size)
    if use_decoded(config.decoded, len(source), decode.example_bytes()):
        data_source, operations = DecodedSource(source, decode.map, key=("pretrain", config.image_size)), []
    else:
        data_source, operations = source, [decode]
    if config.worker_count:
        allow_worker_processes()
    sampler = grain.samplers.IndexSampler(
        num_records=len(source),
        shard_options=shard,
        shuffle=config.shuffle,
        num_epochs=config.num_epochs,
        seed=config.seed,
    )
    if isinstance(data_source, DecodedSource) and not config.worker_count:
        return DecodedBatches(data_source, sampler, batch_size=config.batch_size // shard.shard_count,
                              shard_options=shard)
    return RecordLoader(  # grain.DataLoader; resumes after the data moved with the run
        data_source=data_source,
        sampler=sampler,
        operations=[
            *operations,
            grain.transforms.Batch(batch_size=config.batch_size // shard.shard_count, drop_remainder=True),
        ],
        worker_count=config.worker_count,
        read_options=read_options(config.batch_size // shard.shard_count),
    )

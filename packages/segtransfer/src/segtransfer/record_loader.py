"""The grain loader both transfer pipelines share (segmentation's `segmentation.data.segmentation_loader`,
detection's `detection.data.detection_loader`): process sharding, shuffling, repetition and batching over a
record source and a per-example transform."""

from __future__ import annotations

import grain
import jax
from flopdata import DecodedSource, RecordLoader, RecordSource, allow_worker_processes, read_options

__all__ = ["record_loader"]


def record_loader(
    source: RecordSource | DecodedSource, config, transform: grain.transforms.RandomMap
) -> grain.DataLoader:
    """A grain loader over `source` applying `transform` then batching: sharded over processes (or
    `config.shard_index/shard_count`), shuffled and repeated `config.num_epochs` when `config.train`, one ordered
    epoch otherwise (last batch may be smaller). `config` has batch_size, train, seed, num_epochs, worker_count,
    shard_index, shard_count."""
    if config.shard_count is None:
        index, count = jax.process_index(), jax.process_count()
    else:
        index, count = config.shard_index, config.shard_count
    if config.batch_size % count:
        raise ValueError(f"batch_size={config.batch_size} does not split over {count} processes")
    if config.worker_count:
        allow_worker_processes()
    sampler = grain.samplers.IndexSampler(
        num_records=len(source),
        shard_options=grain.sharding.ShardOptions(shard_index=index, shard_count=count, drop_remainder=True),
        shuffle=config.train,
        num_epochs=config.num_epochs if config.train else (config.num_epochs or 1),
        seed=config.seed,
    )
    return RecordLoader(  # grain.DataLoader; resumes after the data moved with the run
        data_source=source,
        sampler=sampler,
        operations=[
            transform,
            grain.transforms.Batch(config.batch_size // count, drop_remainder=config.train),
        ],
        worker_count=config.worker_count,
        read_options=read_options(config.batch_size // count),
    )

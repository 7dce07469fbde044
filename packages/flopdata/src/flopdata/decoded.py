"""Decoded splits held in memory: decode a split once per process and serve decoded examples from memory.

Streaming a split re-reads, re-parses and re-decodes every record in every epoch of every run (on the 2-core
CPU machine that is ~1,500-2,000 images/s per process, slower than a small model's step). A small split's
decoded examples fit in memory, so `DecodedSource` decodes the whole split on first use with a
*deterministic* decode function (parse + decode + resize; random augmentation stays in the loader, per epoch)
and serves element i from memory. The loader's sampler, shuffle and batching are unchanged, so the batches
are the same as the streaming path's, bit for bit.

    source = RecordSource(directory, "train")
    decoded = DecodedSource(source, decode, key=("pretrain", 32))    # decode(element) -> dict of arrays
    decoded[12]                                                      # decode(source[12]), from memory

`MEMO`, one per process, keeps the decoded splits of recent sources keyed by (directory, split, shard files'
sizes and modification times, `key`), so the next run in the same process (a sweep worker runs many) reuses
them. It holds at most `MEMO_MAX_BYTES` of arrays and drops the least recently used split to make room; a split
larger than the bound is decoded for its source only and not kept. It is process state on purpose (a
cache: what it returns is what decoding would return); `DecodedMemo.clear()` empties it.

`use_decoded(decoded, num_examples, example_bytes)` is the loaders' rule: `decoded=True/False` forces either;
`None` decodes in memory when the split's decoded size (`num_examples x example_bytes`) is below
`DECODE_LIMIT_BYTES` and streams otherwise (ImageNet-scale splits, or examples of unknown size).
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable, Hashable

import numpy as np

from .records import RecordSource

__all__ = ["DECODE_LIMIT_BYTES", "MEMO", "MEMO_MAX_BYTES", "DecodedMemo", "DecodedSource", "use_decoded"]

DECODE_LIMIT_BYTES = 512 * 2**20
"""Splits whose decoded size is below this are decoded in memory by default (`use_decoded`)."""

MEMO_MAX_BYTES = 1024 * 2**20
"""The most bytes of decoded arrays `MEMO` keeps per process (two default-sized splits)."""

Decode = Callable[[dict], dict]


def use_decoded(decoded: bool | None, num_examples: int, example_bytes: int | None) -> bool:
    """Whether a loader serves a split from memory: `decoded` when given, else whether the split's decoded size
    (`num_examples` x `example_bytes`; None = unknown, e.g. images of varying size) is below
    `DECODE_LIMIT_BYTES`."""
    if decoded is not None and not isinstance(decoded, bool):
        raise ValueError(f"decoded={decoded!r}; expected True, False or None (decide by the split's size)")
    if decoded is not None:
        return decoded
    return example_bytes is not None and num_examples * example_bytes < DECODE_LIMIT_BYTES


def _nbytes(examples: list[dict]) -> int:
    return sum(np.asarray(value).nbytes for example in examples for value in example.values())


def _frozen(value):
    if isinstance(value, np.ndarray):  # read-only: a transform writing into an example would change the memo
        value.flags.writeable = False
    return value


class DecodedMemo:
    """Decoded splits by key, least recently used dropped first, at most `max_bytes` of arrays in all."""

    def __init__(self, max_bytes: int):
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError(f"max_bytes={max_bytes!r}; expected an int >= 0")
        self.max_bytes = max_bytes
        self._splits: collections.OrderedDict[Hashable, tuple[list[dict], int]] = collections.OrderedDict()

    def get(self, key: Hashable, build: Callable[[], list[dict]]) -> list[dict]:
        """The examples kept under `key`, else `build()`'s (kept when they fit in `max_bytes`)."""
        if key in self._splits:
            self._splits.move_to_end(key)
            return self._splits[key][0]
        examples = build()
        size = _nbytes(examples)
        if size <= self.max_bytes:
            while self.bytes + size > self.max_bytes:
                self._splits.popitem(last=False)
            self._splits[key] = (examples, size)
        return examples

    @property
    def bytes(self) -> int:
        """Bytes of arrays kept now."""
        return sum(size for _, size in self._splits.values())

    def keys(self) -> list[Hashable]:
        """Keys kept now, least recently used first."""
        return list(self._splits)

    def clear(self) -> None:
        self._splits.clear()


MEMO = DecodedMemo(MEMO_MAX_BYTES)


class DecodedSource:
    """A grain random-access source: element i is `decode(source[i])`, decoded for the whole split on first use
    (or taken from `memo`) and served from memory as read-only arrays.

    decode: deterministic (the same element gives the same arrays), picklable for grain worker processes; each
    worker process decodes the split once (the decoded arrays are not pickled). key: hashable, everything that
    changes decode's output (e.g. the image size); two sources with the same directory, split and key share
    their decoded examples through `memo`.
    """

    def __init__(self, source: RecordSource, decode: Decode, *, key: Hashable, memo: DecodedMemo | None = MEMO):
        if not isinstance(source, RecordSource):
            raise TypeError(f"source={source!r}; expected a flopdata.RecordSource")
        hash(key)  # a TypeError now rather than on first use
        self.source, self.decode, self.key, self.memo = source, decode, key, memo
        self._examples: list[dict] | None = None

    def _memo_key(self) -> tuple:
        # the shard files' sizes and times: a split rebuilt in the same folder is decoded again
        files = tuple((path, os.stat(path).st_size, os.stat(path).st_mtime_ns) for path in self.source._files)
        return (os.path.realpath(self.source.directory), self.source.split, files, self.key)

    def _decode_all(self) -> list[dict]:
        return [
            {name: _frozen(value) for name, value in self.decode(self.source[index]).items()}
            for index in range(len(self.source))
        ]

    def examples(self) -> list[dict]:
        """Every decoded example of the split, in index order (decoding them on the first call)."""
        if self._examples is None:
            self._examples = (
                self._decode_all() if self.memo is None else self.memo.get(self._memo_key(), self._decode_all)
            )
        return self._examples

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index) -> dict:
        index = int(index)
        if not 0 <= index < len(self.source):
            raise IndexError(f"index={index}; {self.source.name} {self.source.split} has {len(self.source)} examples")
        return dict(self.examples()[index])

    def __repr__(self) -> str:
        # grain checks a restored iterator state against repr(data_source). The decoded source serves the same
        # examples at the same positions as the record source, so a checkpoint of either resumes with the other.
        return repr(self.source)

    def __getstate__(self):
        # grain worker processes decode for themselves (one memo per process): the arrays are not pickled
        return {**self.__dict__, "_examples": None, "memo": "MEMO" if self.memo is MEMO else None}

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.memo == "MEMO":
            self.memo = MEMO

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
import json
import os
from collections.abc import Callable, Hashable

import numpy as np

from .records import RecordSource, same_records

__all__ = ["DECODE_LIMIT_BYTES", "MEMO", "MEMO_MAX_BYTES", "DecodedBatchIterator", "DecodedBatches", "DecodedMemo",
           "DecodedSource", "use_decoded"]

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


def _nbytes(held: list[dict] | dict) -> int:
    if isinstance(held, dict):  # stacked columns
        return sum(np.asarray(value).nbytes for value in held.values())
    return sum(np.asarray(value).nbytes for example in held for value in example.values())


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

    def get(self, key: Hashable, build: Callable[[], list[dict] | dict]) -> list[dict] | dict:
        """The examples (or stacked columns) kept under `key`, else `build()`'s (kept when they fit in
        `max_bytes`)."""
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
        self._derived: dict[tuple, object] = {}  # `memo_get`'s results, by part

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

    def memo_get(self, part: tuple, build: Callable[[], object]) -> object:
        """Something derived from this split's decoded examples (``part`` names it, e.g. ``("columns",)``), kept
        in the memo beside them (only while they are kept); built once per source either way."""
        if part not in self._derived:
            self._derived[part] = build() if self.memo is None else self.memo.get((*self._memo_key(), *part), build)
        return self._derived[part]

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
        return {**self.__dict__, "_examples": None, "_derived": {}, "memo": "MEMO" if self.memo is MEMO else None}

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.memo == "MEMO":
            self.memo = MEMO


class DecodedBatches:
    """The batches of ``grain.DataLoader(data_source=source, sampler=sampler, worker_count=0,
    operations=[grain.transforms.Batch(batch_size, drop_remainder=True)])``, in the same order and with
    interchangeable iterator states, gathered a batch at a time from the split's stacked arrays.

    grain's in-process loader handles every element on its own (sampler record, read thread, stack): on the 2-core
    CPU machine ~80 us an image, as long as a small model's whole training step. Here one batch costs one sampler
    lookup per element and one gather per field. ``shard_options`` must be the sampler's. The decoded examples must
    share their field names, shapes and dtype kinds (strings stack to the batch's longest, as ``np.stack`` does).
    ``iter()`` gives an iterator with ``get_state()`` / ``set_state(bytes)`` in grain's format: a checkpoint
    written by either loader resumes with the other.
    """

    def __init__(self, source: DecodedSource, sampler, *, batch_size: int, shard_options):
        import grain

        if not isinstance(source, DecodedSource):
            raise TypeError(f"source={source!r}; expected a flopdata.DecodedSource")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}; expected a positive int")
        self.source, self.sampler, self.batch_size, self.shard_options = source, sampler, batch_size, shard_options
        # grain's own state at the start, the template of every state this loader writes and the check of those
        # it reads (same sampler, same source)
        template = grain.DataLoader(data_source=source, sampler=sampler, worker_count=0,
                                    operations=[grain.transforms.Batch(batch_size=batch_size, drop_remainder=True)])
        self._template = json.loads(iter(template).get_state().decode())
        if self._template.get("worker_count") != 0 or set(self._template.get("last_seen_indices", {})) != {"0"}:
            raise RuntimeError(f"grain's DataLoader state {self._template} is not the in-process format this "
                               "loader writes (grain version change?)")

    def __iter__(self) -> DecodedBatchIterator:
        return DecodedBatchIterator(self)


def _columns(examples: list[dict], where: str) -> dict[str, np.ndarray]:
    first = examples[0]
    columns = {}
    for name, value in first.items():
        value = np.asarray(value)
        values = [np.asarray(example[name]) for example in examples]
        if any(v.shape != value.shape or v.dtype.kind != value.dtype.kind for v in values):
            raise ValueError(f"{where}: field {name!r} changes shape or type across examples; batch it with grain")
        columns[name] = np.stack(values)
        columns[name].flags.writeable = False
    return columns


class DecodedBatchIterator:
    """`DecodedBatches`' iterator: ``next()`` -> a batch dict; ``get_state()`` / ``set_state(state)`` in grain's
    JSON bytes."""

    def __init__(self, batches: DecodedBatches):
        self._batches = batches
        self._next = 0  # elements of this shard consumed so far (grain's "next_index")
        self._columns: dict[str, np.ndarray] | None = None

    def __iter__(self) -> DecodedBatchIterator:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        b = self._batches
        if self._columns is None:
            self._columns = b.source.memo_get(("columns",), lambda: _columns(b.source.examples(), repr(b.source)))
        count, index = b.shard_options.shard_count, b.shard_options.shard_index
        try:
            keys = [b.sampler[index + (self._next + j) * count].record_key for j in range(b.batch_size)]
        except IndexError:  # a finite sampler ran out: the last partial batch is dropped, as grain does
            raise StopIteration from None
        self._next += b.batch_size
        keys = np.asarray(keys, np.int64)
        return {name: _gather(column, keys) for name, column in self._columns.items()}

    def get_state(self) -> bytes:
        b = self._batches
        state = dict(b._template)
        count, index = b.shard_options.shard_count, b.shard_options.shard_index
        state["last_seen_indices"] = {"0": index - count + self._next * count}
        return json.dumps(state, indent=4).encode()

    def set_state(self, state: bytes) -> None:
        b = self._batches
        loaded = json.loads(state.decode())
        current = b._template["data_source"]
        if isinstance(loaded.get("data_source"), str) and same_records(loaded["data_source"], current):
            loaded["data_source"] = current  # the same records, moved with the run
        for name in ("sampler", "data_source", "worker_count"):
            if loaded.get(name) != b._template[name]:
                raise ValueError(f"the loader state's {name} is {loaded.get(name)!r}; this loader has "
                                 f"{b._template[name]!r} (a checkpoint of another dataset or loader)")
        count, index = b.shard_options.shard_count, b.shard_options.shard_index
        self._next = (int(loaded["last_seen_indices"]["0"]) + count - index) // count


def _gather(column: np.ndarray, keys: np.ndarray) -> np.ndarray:
    out = column[keys]
    if out.dtype.kind == "U":  # np.stack of strings is as wide as the batch's longest, not the split's
        out = np.asarray(out.tolist())
    return out

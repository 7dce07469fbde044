"""flopdata.decoded: a split decoded once and served from memory gives the streaming path's batches, bit for
bit; the per-process memo reuses a split and keeps within its bound (`tiny` is a 30 + 4 example build)."""

import pickle

import grain
import numpy as np
import pytest
from flopdata import (
    DECODE_LIMIT_BYTES,
    MEMO,
    DecodedBatches,
    DecodedMemo,
    DecodedSource,
    RecordSource,
    decode_rgb,
    parse_example,
    resize_image,
    use_decoded,
)


class Decode(grain.transforms.Map):
    """A deterministic decode (parse, PNG decode, resize), counting its calls."""

    def __init__(self, source, size):
        self.source, self.size, self.calls = source, size, 0

    def map(self, element):
        self.calls += 1
        where = self.source.describe(element["index"])
        fields = parse_example(element["record"], where=where)
        image = resize_image(decode_rgb(fields["image"][0], where=where), self.size, self.size)
        return {"image": image.astype(np.float32) / np.float32(255.0), "label": np.int32(fields["label"][0])}


def _batches(data_source, operations, seed=3):
    sampler = grain.samplers.IndexSampler(num_records=len(data_source), shuffle=True, num_epochs=2, seed=seed,
                                          shard_options=grain.sharding.NoSharding())
    loader = grain.DataLoader(data_source=data_source, sampler=sampler, worker_count=0,
                              operations=[*operations, grain.transforms.Batch(batch_size=7, drop_remainder=True)])
    return list(loader)


def test_same_batches_as_streaming_bit_for_bit(tiny):
    source = RecordSource(tiny, "train")
    decode = Decode(source, 4)
    streamed = _batches(source, [decode])
    decoded = DecodedSource(source, decode.map, key=("test", 4), memo=None)
    served = _batches(decoded, [])
    assert len(streamed) == len(served) == 8  # two epochs of 30 in batches of 7
    for want, got in zip(streamed, served, strict=True):
        assert want.keys() == got.keys()
        for name in want:
            assert want[name].dtype == got[name].dtype
            np.testing.assert_array_equal(want[name], got[name])
    assert repr(decoded) == repr(source)  # a grain checkpoint of either path restores with the other


class Captioned(Decode):
    """`Decode` plus a caption whose length varies by example (np.stack makes a batch as wide as its longest)."""

    def map(self, element):
        return {**super().map(element), "caption": np.str_("x" * (element["index"] % 9))}


def _grain_loader(data_source, sampler, batch_size):
    return grain.DataLoader(data_source=data_source, sampler=sampler, worker_count=0,
                            operations=[grain.transforms.Batch(batch_size=batch_size, drop_remainder=True)])


def _sampler(num_records, shard, *, num_epochs=None, seed=3):
    return grain.samplers.IndexSampler(num_records=num_records, shuffle=True, num_epochs=num_epochs, seed=seed,
                                       shard_options=shard)


def _assert_same(want, got):
    assert want.keys() == got.keys()
    for name in want:
        assert want[name].dtype == got[name].dtype and want[name].shape == got[name].shape, name
        np.testing.assert_array_equal(want[name], got[name])


@pytest.mark.parametrize("shard", [grain.sharding.NoSharding(),
                                   grain.sharding.ShardOptions(shard_index=1, shard_count=2, drop_remainder=True)])
def test_decoded_batches_are_grains_batches_and_states(tiny, shard):
    source = RecordSource(tiny, "train")
    decoded = DecodedSource(source, Captioned(source, 4).map, key=("batches", 4), memo=None)
    # two finite epochs: the same batches, then the same end (the last partial batch dropped)
    want = list(_grain_loader(decoded, _sampler(30, shard, num_epochs=2), 4))
    got = list(DecodedBatches(decoded, _sampler(30, shard, num_epochs=2), batch_size=4, shard_options=shard))
    assert len(got) == len(want) == (30 // shard.shard_count * 2) // 4
    for a, b in zip(want, got, strict=True):
        _assert_same(a, b)
    # endless: a state taken part-way through (past an epoch boundary) means the same position in both loaders,
    # and either restores the other's
    ours = iter(DecodedBatches(decoded, _sampler(30, shard), batch_size=4, shard_options=shard))
    theirs = iter(_grain_loader(decoded, _sampler(30, shard), 4))
    for _ in range(5):
        _assert_same(next(theirs), next(ours))
    state, their_state = ours.get_state(), theirs.get_state()
    assert state == their_state
    following = [next(theirs) for _ in range(3)]
    resumed_ours = iter(DecodedBatches(decoded, _sampler(30, shard), batch_size=4, shard_options=shard))
    resumed_ours.set_state(their_state)
    resumed_theirs = iter(_grain_loader(decoded, _sampler(30, shard), 4))
    resumed_theirs.set_state(state)
    for want_batch in following:
        _assert_same(want_batch, next(resumed_ours))
        _assert_same(want_batch, next(resumed_theirs))


def test_decoded_batches_refuse_another_loaders_state(tiny):
    source = RecordSource(tiny, "train")
    decoded = DecodedSource(source, Decode(source, 4).map, key=("batches", 4), memo=None)
    shard = grain.sharding.NoSharding()
    other = iter(_grain_loader(decoded, _sampler(30, shard, seed=4), 4))
    ours = iter(DecodedBatches(decoded, _sampler(30, shard), batch_size=4, shard_options=shard))
    with pytest.raises(ValueError, match=r"the loader state's sampler is .*seed=4\)'; this loader has .*seed=3\)' "
                                         r"\(a checkpoint of another dataset or loader\)"):
        ours.set_state(other.get_state())
    with pytest.raises(ValueError, match="batch_size=0; expected a positive int"):
        DecodedBatches(decoded, _sampler(30, shard), batch_size=0, shard_options=shard)


def test_decodes_once_and_serves_read_only_arrays(tiny):
    source = RecordSource(tiny, "train")
    decode = Decode(source, 4)
    decoded = DecodedSource(source, decode.map, key=("test", 4), memo=DecodedMemo(2**20))
    assert decode.calls == 0  # built on first use
    first = decoded[5]
    assert decode.calls == len(source) == len(decoded) == 30
    decoded[6], decoded[5]
    assert decode.calls == 30
    with pytest.raises(ValueError, match="read-only"):
        first["image"][0, 0, 0] = 1.0
    with pytest.raises(IndexError, match="index=30; tiny_records train has 30 examples"):
        decoded[30]
    # pickled for grain worker processes without the arrays: each worker decodes for itself
    clone = pickle.loads(pickle.dumps(decoded))
    assert clone._examples is None and clone.memo is None
    np.testing.assert_array_equal(clone[5]["image"], first["image"])


def test_memo_shares_a_split_and_keeps_within_its_bound(tiny):
    train, test = RecordSource(tiny, "train"), RecordSource(tiny, "test")
    decode = Decode(train, 4)
    split_bytes = 30 * (4 * 4 * 3 * 4 + 4)  # 30 float32 images 4x4x3 and their int32 labels
    memo = DecodedMemo(split_bytes + 4 * (4 * 4 * 3 * 4 + 4))  # room for train + test (4 examples), no more
    DecodedSource(train, decode.map, key=("test", 4), memo=memo).examples()
    assert memo.bytes == split_bytes and decode.calls == 30
    # another source over the same split and key (the next run in this process) decodes nothing
    again = DecodedSource(RecordSource(tiny, "train"), decode.map, key=("test", 4), memo=memo)
    np.testing.assert_array_equal(again[3]["image"], DecodedSource(train, Decode(train, 4).map, key=0,
                                                                   memo=None)[3]["image"])
    assert decode.calls == 30
    DecodedSource(test, Decode(test, 4).map, key=("test", 4), memo=memo).examples()
    assert len(memo.keys()) == 2 and memo.bytes == split_bytes + 4 * (4 * 4 * 3 * 4 + 4)
    # a third split does not fit: the least recently used (train) goes
    other = Decode(train, 2)
    DecodedSource(train, other.map, key=("test", 2), memo=memo).examples()
    assert [key[-1] for key in memo.keys()] == [("test", 4), ("test", 2)] and memo.bytes <= memo.max_bytes
    assert [key[1] for key in memo.keys()] == ["test", "train"]
    # a split larger than the bound is served but not kept
    small = DecodedMemo(100)
    big = DecodedSource(train, Decode(train, 4).map, key=("test", 4), memo=small)
    assert len(big.examples()) == 30 and small.keys() == [] and small.bytes == 0
    with pytest.raises(ValueError, match=r"max_bytes=-1; expected an int >= 0"):
        DecodedMemo(-1)
    assert MEMO.max_bytes == 1024 * 2**20


def test_use_decoded_decides_by_the_split_size():
    assert use_decoded(None, 1000, 1024) and not use_decoded(None, 1000, DECODE_LIMIT_BYTES)
    assert not use_decoded(None, 10, None)  # unknown size (images of varying shape): stream
    assert use_decoded(True, 10**9, 10**6) and not use_decoded(False, 1, 1)


def test_fixed_shape(tiny):
    source = RecordSource(tiny, "train")
    assert source.fixed_shape("image") is None  # TinyRecords images are (None, None, 3)
    assert source.fixed_shape("missing") is None

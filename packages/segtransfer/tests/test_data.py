"""segtransfer.segmentation.data: the segmentation pipeline on tiny TFDS directories written by the test (detection:
tests/detection/test_data.py)."""

import io
import itertools

import numpy as np
import pytest
import tensorflow_datasets as tfds
from flopdata import DecodedSource
from PIL import Image
from segtransfer.segmentation.data import (
    IGNORE_INDEX,
    SegmentationData,
    segmentation_loader,
)
from segtransfer.segmentation.photometric import PHOTOMETRIC

H, W = 12, 16


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _mask(index):
    """Vertical stripes: column x has label (x + index) % 5, row 0 is ignore."""
    mask = np.broadcast_to((np.arange(W) + index) % 5, (H, W)).astype(np.uint8).copy()
    mask[0] = IGNORE_INDEX
    return mask


class TinyScenes(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    VERSION = tfds.core.Version("1.0.0")
    url_infos = None

    def __init__(self, *, bad_label=None, **kwargs):
        self._bad_label = bad_label
        super().__init__(**kwargs)

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(H, W, 3)),
                    "segmentation_mask": tfds.features.Image(shape=(H, W, 1)),
                    "objects": tfds.features.Sequence(
                        {
                            "bbox": tfds.features.BBoxFeature(),
                            "label": tfds.features.ClassLabel(num_classes=5),
                            "mask": tfds.features.Image(shape=(H, W, 1)),
                        }
                    ),
                }
            )
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(8)}

    def _generate_examples(self, count):
        for index in range(count):
            mask = _mask(index)
            if self._bad_label is not None:
                mask[3, 3] = self._bad_label
            image = np.stack([mask * 40, np.full_like(mask, index * 20), mask], -1).astype(np.uint8)
            box_mask = np.zeros((H, W), np.uint8)
            box_mask[2:6, 3 + index % 4 : 9] = 1
            yield (
                index,
                {
                    "image": _png(image),
                    "segmentation_mask": _png(mask),
                    "objects": {
                        "bbox": [tfds.features.BBox(2 / H, (3 + index % 4) / W, 6 / H, 9 / W)],
                        "label": [index % 5],
                        "mask": [_png(box_mask)],
                    },
                },
            )


def _build(path, **kwargs):
    builder = TinyScenes(data_dir=str(path), file_format="array_record", **kwargs)
    builder.download_and_prepare()
    return builder.data_dir


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("scenes"))


def _index_of(mask_row):
    """Recover the example index from a mask row (column x has label (x + index) % 5)."""
    return int(mask_row[0]) % 5


def test_eval_centre_crop_matches_a_numpy_reference(directory):
    config = SegmentationData(directory, batch_size=8, num_classes=5, train=False, crop_size=8)
    batch = next(iter(segmentation_loader(config)))
    assert batch["image"].shape == (8, 8, 8, 3) and batch["mask"].dtype == np.int32
    # Short side 12 -> 8 (x 2/3): 8 x 11; nearest-neighbour source pixel floor((i + 0.5) * 12 / 8); centre
    # crop.
    rows = np.floor((np.arange(8) + 0.5) * H / 8).astype(int)
    cols = np.floor((np.arange(11) + 0.5) * W / 11).astype(int)[1:9]
    for mask in batch["mask"]:
        # examples i and i + 5 have the same mask; each output must be one of them, exactly
        assert any(np.array_equal(_mask(i)[np.ix_(rows, cols)], mask) for i in range(5))


def test_train_rescale_crop_pad_and_flip(directory):
    config = SegmentationData(directory, batch_size=8, num_classes=5, crop_size=40, base_size=8, seed=1)
    iterator = iter(segmentation_loader(config))
    sizes = set()
    for _ in range(6):
        batch = next(iterator)
        assert batch["image"].shape == (8, 40, 40, 3) and batch["image"].dtype == np.float32
        assert 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0
        for mask in batch["mask"]:
            assert set(np.unique(mask)) <= {0, 1, 2, 3, 4, IGNORE_INDEX}
            valid_rows = np.nonzero((mask != IGNORE_INDEX).any(1))[0]
            valid_cols = np.nonzero((mask != IGNORE_INDEX).any(0))[0]
            # crop 40 > rescaled image: the image sits at the top-left (top-right once flipped), padding
            # ignored
            height, width = valid_rows[-1] + 1, valid_cols[-1] - valid_cols[0] + 1
            sizes.add((height, width))
            assert valid_cols[0] == 0 or valid_cols[-1] == 39
            # stripes survive (no interpolation of labels): when not shrunk, neighbouring output columns come
            # from the same or adjacent source columns: label steps of 0, +1, or -1 when flipped
            if width >= W:
                steps = np.diff(mask[height // 2, valid_cols[0] : valid_cols[-1] + 1].astype(int)) % 5
                assert set(steps.tolist()) <= {0, 1, 4}
    # short side 12 -> 8 * factor for factor in 0.5..2.0 step 0.25 -> 4, 6, ..., 16 rows
    expected = {(round(8 * f), round(W * 8 * f / H)) for f in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)}
    assert sizes <= expected and len(sizes) >= 4


def test_segmentation_pipeline_uses_the_studys_jitter_by_default(directory):
    assert SegmentationData("d", batch_size=1, num_classes=2).photometric == "byol"
    assert set(PHOTOMETRIC) == {"byol", "mmseg", "none"}
    with pytest.raises(ValueError, match=r"photometric='cv2'; expected one of \['byol', 'mmseg', 'none'\]"):
        SegmentationData("d", batch_size=1, num_classes=2, photometric="cv2")
    batches = {}
    for name in ("byol", "none"):
        config = SegmentationData(directory, batch_size=8, num_classes=5, crop_size=8, seed=3, photometric=name)
        batches[name] = next(iter(segmentation_loader(config)))
    # Same seed: the same crops and flips (photometric draws come last), then jitter on some images only.
    np.testing.assert_array_equal(batches["byol"]["mask"], batches["none"]["mask"])
    changed = [not np.array_equal(a, b) for a, b in zip(batches["byol"]["image"], batches["none"]["image"],
                                                         strict=True)]
    assert any(changed) and not all(changed)


def test_out_of_range_label_names_the_example(tmp_path):
    broken = _build(tmp_path / "bad", bad_label=7)
    loader = segmentation_loader(
        SegmentationData(broken, batch_size=2, num_classes=5, train=False, crop_size=8)
    )
    with pytest.raises(ValueError, match=r"tiny_scenes train\[\d\].*mask labels \[7\] are outside 0..4"):
        next(iter(loader))
    with pytest.raises(ValueError, match=r"split='validation' is not in"):
        segmentation_loader(SegmentationData(broken, batch_size=2, num_classes=5, split="validation"))



def test_decoded_in_memory_gives_the_streaming_batches(directory):
    # The deterministic decode is held in memory (by default for a small split); the random rescale, crop,
    # flip and jitter stay per epoch, drawn as when streaming: the same batches, bit for bit.
    for train in (True, False):
        def batches(decoded, train=train):
            config = SegmentationData(directory, batch_size=4, num_classes=5, train=train, crop_size=8, seed=3,
                                      decoded=decoded)
            return list(itertools.islice(iter(segmentation_loader(config)), 6))

        streamed, default = batches(False), batches(None)
        assert len(streamed) == len(default) >= 2
        for want, got in zip(streamed, default, strict=True):
            for key in ("image", "mask"):
                assert want[key].dtype == got[key].dtype
                np.testing.assert_array_equal(want[key], got[key])
    config = SegmentationData(directory, batch_size=4, num_classes=5)
    assert isinstance(segmentation_loader(config)._data_source, DecodedSource)

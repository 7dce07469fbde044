"""Shared fixtures: one tiny detector per session (eager initialisation compiles a small program per parameter
shape) and a tiny TFDS detection directory written in the real on-disk format."""

import io
import types

import jax.random as jr
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image
from segtransfer.detection import detector_config, detector_from_scratch


@pytest.fixture(scope="session")
def tiny_detector():
    """vit-test encoder (patch 8, width 32, depth 2) at 64x64 + the "tiny" heads, 3 classes."""
    return detector_from_scratch("vit-test", detector_config("tiny", num_classes=3), key=jr.key(0))


H, W = 24, 32
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _scene(rects):
    """Black image with each rectangle (x1, y1, x2, y2 in pixels) painted in its own colour; masks = rectangles."""
    image = np.zeros((H, W, 3), np.uint8)
    masks = []
    for i, (x1, y1, x2, y2) in enumerate(rects):
        image[y1:y2, x1:x2] = COLOURS[i]
        mask = np.zeros((H, W), np.uint8)
        mask[y1:y2, x1:x2] = 1
        masks.append(mask)
    return image, masks


# Scenes: (rectangles, boxes written to the records in [0, 1] y/x order; None = the rectangle's own box)
SCENES = [
    ([(2, 3, 12, 15), (20, 6, 32, 20)], [None, (6 / H, 20 / W, 20 / H, 1.25)]),  # box 2 leaves the image: clipped
    ([(4, 4, 10, 10), (14, 2, 28, 22)], [(0.5, 0.25, 0.5, 0.5), None]),  # a zero-height box: dropped, counted
    ([], []),  # no objects
]
CROWDED = [([(i * 6, 0, i * 6 + 5, 5) for i in range(5)], [None] * 5)]


class TinyDetection(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    VERSION = tfds.core.Version("1.0.0")
    url_infos = None

    def __init__(self, *, scenes, test_scenes=None, **kwargs):
        self._scenes, self._test_scenes = scenes, test_scenes
        super().__init__(**kwargs)

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(H, W, 3)),
                    "objects": tfds.features.Sequence(
                        {
                            # a plain tensor, not BBoxFeature: the records may hold boxes outside [0, 1]
                            "bbox": tfds.features.Tensor(shape=(4,), dtype=np.float32),
                            "label": tfds.features.ClassLabel(num_classes=5),
                            "mask": tfds.features.Image(shape=(H, W, 1)),
                        }
                    ),
                }
            )
        )

    def _split_generators(self, dl_manager):
        splits = {"train": self._generate_examples(self._scenes)}
        if self._test_scenes is not None:
            splits["test"] = self._generate_examples(self._test_scenes)
        return splits

    def _generate_examples(self, scenes):
        for index, (rects, boxes) in enumerate(scenes):
            image, masks = _scene(rects)
            bbox = [
                np.asarray(b if b is not None else (r[1] / H, r[0] / W, r[3] / H, r[2] / W), np.float32)
                for r, b in zip(rects, boxes, strict=True)
            ]
            yield index, {
                "image": _png(image),
                "objects": {"bbox": bbox, "label": list(range(len(rects))), "mask": [_png(m) for m in masks]},
            }


def _build(path, scenes, test_scenes=None):
    builder = TinyDetection(scenes=scenes, test_scenes=test_scenes, data_dir=str(path), file_format="array_record")
    builder.download_and_prepare()
    return str(builder.data_dir)


@pytest.fixture(scope="session")
def directory(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("det"), SCENES)


@pytest.fixture(scope="session")
def kit():
    """The scene definitions and the builder, for tests that write their own directories."""
    return types.SimpleNamespace(H=H, W=W, COLOURS=COLOURS, SCENES=SCENES, CROWDED=CROWDED, build=_build, scene=_scene)

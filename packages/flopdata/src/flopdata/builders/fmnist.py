"""`fmnist_objects` and `fmnist_scenes`: the embedded pre-training/transfer sets built from Fashion-MNIST.

Both are deterministic from (seed, split, example index): each example draws from its own
`np.random.default_rng((seed, split_code, index))`, so the output does not depend on write order. Train
examples use only Fashion-MNIST train items, test examples only test items. `num_examples` sets the train
split size; the test split gets `num_examples // 6` (Fashion-MNIST's 60K:10K ratio). Without it, the splits
have 60K and 10K.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from ..images import encode_png
from . import fmnist_idx, fmnist_render
from .base import OfflineBuilder

_SPLIT_CODES = {"train": 0, "test": 1}
_SCENE_ITEMS = (2, 5)  # inclusive range of items per scene


class _FmnistBuilder(OfflineBuilder):
    OPTIONS = ("source", "num_examples", "seed", "image_size")
    EMBEDDED = True  # the source defaults to the Debian package's idx files

    def __init__(
        self,
        *,
        source: str | Path | None = None,
        num_examples: int | None = None,
        seed: int = 0,
        image_size: int = 64,
        **kwargs,
    ):
        if num_examples is not None and num_examples < 6:
            raise ValueError(f"num_examples={num_examples}; expected at least 6 (the test split gets 1/6)")
        if image_size < 16:
            raise ValueError(f"image_size={image_size}; expected at least 16 pixels")
        self._source = Path(source) if source is not None else None
        self._num_examples = num_examples
        self._seed = int(seed)
        self._image_size = int(image_size)
        resolved = str(self._source.resolve()) if self._source is not None else None
        options = {"source": resolved, "num_examples": num_examples, "seed": seed, "image_size": image_size}
        super().__init__(build_options=options, **kwargs)

    def check_source(self) -> None:
        fmnist_idx.check_source(self._source)

    def _split_generators(self, dl_manager):
        del dl_manager
        generators = {}
        for split in ("train", "test"):
            items, labels = fmnist_idx.load_split(split, self._source)
            count = len(items)
            if self._num_examples is not None:
                count = self._num_examples if split == "train" else self._num_examples // 6
            generators[split] = self._generate_examples(split=split, items=items, labels=labels, count=count)
        return generators

    def _rng(self, split: str, index: int) -> np.random.Generator:
        return np.random.default_rng((self._seed, _SPLIT_CODES[split], index))


class FmnistObjects(_FmnistBuilder):
    """One tinted Fashion-MNIST item per image, centred: curated and object-centric, like ImageNet."""

    def _info(self):
        size = self._image_size
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(size, size, 3), encoding_format="png"),
                    "label": tfds.features.ClassLabel(names=fmnist_idx.CLASS_WORDS),
                    "caption": tfds.features.Text(),
                    "source_index": np.int64,
                }
            ),
            metadata=self._metadata(),
        )

    def _generate_examples(self, *, split, items, labels, count):
        # A per-split permutation so the first N examples cover the classes evenly; wraps past the item count.
        order = np.random.default_rng((self._seed, 100 + _SPLIT_CODES[split])).permutation(len(items))
        for index in range(count):
            source = int(order[index % len(items)])
            image = fmnist_render.render_object(items[source], self._image_size, self._rng(split, index))
            label = int(labels[source])
            yield (
                index,
                {
                    "image": encode_png(image),
                    "label": label,
                    "caption": fmnist_idx.caption([label]),
                    "source_index": source,
                },
            )


class FmnistScenes(_FmnistBuilder):
    """2-5 tinted items on a textured background with masks, boxes and label lists: scene-level, like
    COCO/JFT."""

    def _info(self):
        size = self._image_size
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(size, size, 3), encoding_format="png"),
                    "labels": tfds.features.Sequence(tfds.features.ClassLabel(names=fmnist_idx.CLASS_WORDS)),
                    "caption": tfds.features.Text(),
                    # 0 = background, 1..10 = Fashion-MNIST class + 1.
                    "segmentation_mask": tfds.features.Image(shape=(size, size, 1), encoding_format="png"),
                    "objects": tfds.features.Sequence(
                        {
                            "bbox": tfds.features.BBoxFeature(),
                            "label": tfds.features.ClassLabel(names=fmnist_idx.CLASS_WORDS),
                            "mask": tfds.features.Image(shape=(size, size, 1), encoding_format="png"),
                        }
                    ),
                }
            ),
            metadata=self._metadata(segmentation_classes=["background", *fmnist_idx.CLASS_WORDS]),
        )

    def _generate_examples(self, *, split, items, labels, count):
        for index in range(count):
            rng = self._rng(split, index)
            chosen = rng.integers(0, len(items), size=int(rng.integers(_SCENE_ITEMS[0], _SCENE_ITEMS[1] + 1)))
            scene = fmnist_render.render_scene(items[chosen], labels[chosen], self._image_size, rng)
            yield (
                index,
                {
                    "image": encode_png(scene.image),
                    "labels": scene.labels[: fmnist_idx.MAX_LABELS],
                    "caption": fmnist_idx.caption(scene.labels[: fmnist_idx.MAX_LABELS]),
                    "segmentation_mask": encode_png(scene.semantic_mask),
                    "objects": {
                        "bbox": [tfds.features.BBox(*box) for box in scene.objects_bbox.tolist()],
                        "label": scene.objects_label,
                        "mask": [encode_png(mask) for mask in scene.objects_mask],
                    },
                },
            )

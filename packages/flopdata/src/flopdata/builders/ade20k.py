"""`ade20k`: the 150-class ADE20K scene-parsing benchmark from the official ADEChallengeData2016 folder.

Layout read: `SOURCE/images/{training,validation}/*.jpg` and `SOURCE/annotations/{training,validation}/*.png`
(SOURCE is the `ADEChallengeData2016` folder, or a user's own set in the same layout: images may also be
`.jpeg`/`.png`; each image's annotation is the `.png` of the same stem). Masks are stored after mmsegmentation's
`reduce_zero_label`: 0 ("other") -> 255 (ignored), v -> v - 1, so stored labels are 0..149 or 255. (TFDS
`scene_parse150` is a different, instance-style labelling and is not used.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from jaxtyping import Integer, UInt8

from ..images import IMAGE_SUFFIXES, encode_png, read_label_png, read_rgb_image_bytes
from .base import OfflineBuilder

NUM_CLASSES = 150
IGNORE_INDEX = 255
_SPLITS = {"train": "training", "validation": "validation"}


def reduce_zero_label(mask: Integer[np.ndarray, "h w"], *, file_name: str) -> UInt8[np.ndarray, "h w"]:
    """Raw ADE20K labels [h, w] in 0..150 -> uint8 labels with 0 -> 255 and v -> v - 1."""
    mask = np.asarray(mask)
    if mask.size and (mask.min() < 0 or mask.max() > NUM_CLASSES):
        bad = sorted(set(np.unique(mask[(mask < 0) | (mask > NUM_CLASSES)]).tolist()))[:5]
        raise ValueError(
            f"annotation {file_name!r} has labels {bad}; ADE20K labels must be in 0..{NUM_CLASSES}"
        )
    reduced = mask.astype(np.int64) - 1
    reduced[mask == 0] = IGNORE_INDEX
    return reduced.astype(np.uint8)


class Ade20k(OfflineBuilder):
    """ADE20K (SceneParsing, 150 classes) with reduce-zero-label masks."""

    def __init__(
        self, *, source: str | Path | None = None, num_examples: int | None = None, seed: int = 0, **kwargs
    ):
        if source is None:
            raise ValueError("ade20k needs source=<path to ADEChallengeData2016>, got source=None")
        self._source = Path(source)
        self._num_examples = num_examples
        del seed  # the real data has a fixed order
        super().__init__(
            build_options={"source": str(self._source.resolve()), "num_examples": num_examples}, **kwargs
        )

    def _info(self):
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "segmentation_mask": tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
                    "file_name": tfds.features.Text(),
                }
            ),
            metadata=self._metadata(num_classes=NUM_CLASSES, ignore_index=IGNORE_INDEX),
        )

    def _split_files(self, split: str) -> list[Path]:
        """The image files of ``split`` (at most ``num_examples``); ValueError naming the folder or file when the
        split's folder, its images or an image's annotation is missing."""
        image_dir = self._source / "images" / _SPLITS[split]
        if not image_dir.is_dir():
            raise ValueError(f"ADE20K split {split!r}: folder {str(image_dir)!r} does not exist")
        files = sorted(p for p in image_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"ADE20K split {split!r}: no {'/'.join(IMAGE_SUFFIXES)} files in {str(image_dir)!r}")
        files = files[: self._num_examples] if self._num_examples is not None else files
        for path in files:
            label_path = self._source / "annotations" / _SPLITS[split] / (path.stem + ".png")
            if not label_path.exists():
                raise ValueError(f"image {str(path)!r} has no annotation {str(label_path)!r}")
        return files

    def check_source(self) -> None:
        if not self._source.is_dir():
            raise ValueError(f"ade20k: source {str(self._source)!r} is not a folder")
        for split in _SPLITS:
            self._split_files(split)

    def _split_generators(self, dl_manager):
        del dl_manager
        return {split: self._generate_examples(self._split_files(split), self._source / "annotations" / folder)
                for split, folder in _SPLITS.items()}

    def _generate_examples(self, files, annotation_dir):
        for path in files:
            label_path = annotation_dir / (path.stem + ".png")
            if not label_path.exists():
                raise ValueError(f"image {str(path)!r} has no annotation {str(label_path)!r}")
            image, size = read_rgb_image_bytes(path)
            mask = read_label_png(label_path)
            if mask.shape != size:
                raise ValueError(f"annotation {str(label_path)!r} is {mask.shape}, its image is {size}")
            yield (
                path.stem,
                {
                    "image": image,
                    "segmentation_mask": encode_png(reduce_zero_label(mask, file_name=str(label_path))),
                    "file_name": path.name,
                },
            )

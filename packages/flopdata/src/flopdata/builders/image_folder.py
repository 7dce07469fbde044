"""`image_folder`: a user's own image set (ImageNet-, JFT- or ALIGN-like) from a folder of images.

Two layouts. **Tables**: SOURCE holds one table per split, `SPLIT.csv` or `SPLIT.jsonl` (e.g. `train.csv`,
`validation.jsonl`), whose rows name an image by its path relative to SOURCE (column `image`) and carry any of:
- `label`: one class name;
- `labels`: class names (a JSON list in JSONL; `|`-separated in CSV). At most 8 are kept (the first 8; the
  study's multi-label targets use at most 8 labels per image);
- `caption`: free text (stored whole; text encoders truncate to their own length).
**Class folders** (ImageNet's layout, used when SOURCE holds no table): `SOURCE/SPLIT/CLASS/IMAGE`, e.g.
`train/cat/001.jpg`; each folder of SOURCE is a split, each folder of a split a class (its name is the `label`),
each `.jpg`/`.jpeg`/`.png` file in it an image (other files are not read). Rows alternate between the classes
(the first image of every class, then the second, ...), so `num_examples=N` keeps about N / classes of each.

Class names are the sorted union of all `label`/`labels` values over every split. Every table must have the
same columns. Images that are not RGB JPEG/PNG are converted to RGB PNG; unreadable images are an error naming
the file and row.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import tensorflow_datasets as tfds

from ..images import IMAGE_SUFFIXES, read_rgb_image_bytes
from .base import OfflineBuilder

MAX_LABELS = 8
_OPTIONAL = ("label", "labels", "caption")


def _folders(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def class_folder_tables(source: Path) -> dict[str, list[dict]]:
    """The rows (`image` relative to ``source``, `label`) of each split of a `SOURCE/SPLIT/CLASS/IMAGE` folder,
    classes interleaved; ValueError naming the folder when the layout is not that."""
    tables = {}
    for split in _folders(source):
        loose = _images(split)
        if loose:
            raise ValueError(f"image_folder: {str(split)!r} holds images outside class folders ({loose[0].name}, "
                             f"...); expected SOURCE/SPLIT/CLASS/IMAGE or a SPLIT.csv/SPLIT.jsonl table in SOURCE")
        per_class = []
        for folder in _folders(split):
            images = _images(folder)
            if not images:
                raise ValueError(f"image_folder: class folder {str(folder)!r} holds no "
                                 f"{'/'.join(IMAGE_SUFFIXES)} image")
            per_class.append([{"image": p.relative_to(source).as_posix(), "label": folder.name} for p in images])
        if not per_class:
            raise ValueError(f"image_folder: split folder {str(split)!r} holds no class folders; expected "
                             "SOURCE/SPLIT/CLASS/IMAGE")
        longest = max(len(rows) for rows in per_class)
        tables[split.name] = [rows[i] for i in range(longest) for rows in per_class if i < len(rows)]
    if not tables:
        raise ValueError(f"image_folder: no SPLIT.csv or SPLIT.jsonl table and no SPLIT/CLASS/ image folders in "
                         f"{str(source)!r}")
    return tables


def read_table(path: Path) -> list[dict]:
    """Rows of a CSV/JSONL table with `labels` as lists; ValueError naming the file and row when malformed."""
    rows = []
    if path.suffix == ".csv":
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or "image" not in reader.fieldnames:
                raise ValueError(f"{str(path)!r} has no 'image' column in its header (got {reader.fieldnames})")
            for row in reader:
                if "labels" in row:
                    row["labels"] = [name for name in (row["labels"] or "").split("|") if name]
                rows.append(row)
    else:
        with open(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{str(path)!r} line {number} is not JSON: {error}") from error
                if "labels" in row and not isinstance(row["labels"], list):
                    raise ValueError(
                        f"{str(path)!r} line {number}: 'labels' must be a list, got {row['labels']!r}"
                    )
                rows.append(row)
    if not rows:
        raise ValueError(f"{str(path)!r} holds no rows (a header only?); a split needs at least one image")
    for number, row in enumerate(rows, start=1):
        if not row.get("image"):
            raise ValueError(f"{str(path)!r} row {number} has no 'image' path: {row!r}")
    return rows


class ImageFolder(OfflineBuilder):
    """Images with optional label / labels / caption, from SPLIT.csv or SPLIT.jsonl tables."""

    def __init__(
        self, *, source: str | Path | None = None, num_examples: int | None = None, seed: int = 0, **kwargs
    ):
        if source is None:
            raise ValueError("image_folder needs source=<folder with SPLIT.csv/SPLIT.jsonl tables or "
                             "SPLIT/CLASS/ image folders>, got source=None")
        self._source = Path(source)
        del seed  # rows keep the table order
        if not self._source.is_dir():
            raise ValueError(f"image_folder: source {str(self._source)!r} is not a folder")
        tables = sorted(self._source.glob("*.csv")) + sorted(self._source.glob("*.jsonl"))
        self._tables = {}
        for path in tables:
            if path.stem in self._tables:
                raise ValueError(f"image_folder: split {path.stem!r} has both a .csv and a .jsonl table")
            self._tables[path.stem] = read_table(path)[:num_examples]
        if not tables:
            self._tables = {split: rows[:num_examples] for split, rows in class_folder_tables(self._source).items()}
        columns = {
            split: tuple(c for c in _OPTIONAL if rows and c in rows[0])
            for split, rows in self._tables.items()
        }
        if len(set(columns.values())) != 1:
            raise ValueError(
                f"image_folder: tables have different columns {columns}; every split needs the same"
            )
        self._columns = next(iter(columns.values()))
        names = set()
        for split, rows in self._tables.items():
            for number, row in enumerate(rows, start=1):
                missing = [c for c in self._columns if c not in row]
                if missing:
                    raise ValueError(f"image_folder: {split} row {number} lacks columns {missing}: {row!r}")
                names.update([str(row["label"])] if "label" in self._columns else [])
                names.update(str(name) for name in row.get("labels", []))
        self._class_names = sorted(names)
        super().__init__(
            build_options={"source": str(self._source.resolve()), "num_examples": num_examples}, **kwargs
        )

    def _info(self):
        features = {"image": tfds.features.Image(shape=(None, None, 3)), "file_name": tfds.features.Text()}
        if "label" in self._columns:
            features["label"] = tfds.features.ClassLabel(names=self._class_names)
        if "labels" in self._columns:
            features["labels"] = tfds.features.Sequence(tfds.features.ClassLabel(names=self._class_names))
        if "caption" in self._columns:
            features["caption"] = tfds.features.Text()
        return self.dataset_info_from_configs(  # the options recorded, so that the same build is reused
            description=__doc__, features=tfds.features.FeaturesDict(features), metadata=self._metadata()
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        return {split: self._generate_examples(split, rows) for split, rows in self._tables.items()}

    def _generate_examples(self, split, rows):
        for number, row in enumerate(rows, start=1):
            path = self._source / row["image"]
            if not path.exists():
                raise ValueError(
                    f"image_folder: {split} row {number} names {str(path)!r}, which does not exist"
                )
            try:
                image, _ = read_rgb_image_bytes(path)
            except ValueError as error:
                raise ValueError(f"image_folder: {split} row {number}: {error}") from error
            example = {"image": image, "file_name": str(row["image"])}
            if "label" in self._columns:
                example["label"] = str(row["label"])
            if "labels" in self._columns:
                example["labels"] = [str(name) for name in row["labels"]][:MAX_LABELS]
            if "caption" in self._columns:
                example["caption"] = str(row["caption"])
            yield number, example

"""Every option of a detection fine-tuning study, declared once: `DetectionSpec`.

`DetectionSpec` is what ``flopwise-finetune-det`` parses (its flags are generated from the fields:
`flopcli.add_spec_flags`) and what a sweep's detection task holds (its canonical JSON, less the fields that
only say how it runs, is hashed into the task's id). Defaults: the study's COCO protocol (Koppula et al. 2022,
appendix A.6): the ViTDet Mask R-CNN, 22,000 steps at batch 64 and 1024 px, AdamW lr 1e-4, wd 0.1, layer decay
0.7, drop path 0.1, the large-scale-jitter range 0.1-2.0. ``run_config(dataset_dir)`` is the
`DetectionRunConfig` of its first seed on a dataset; ``command(...)`` the command that reruns the study, which
``detection_study`` writes to the study's folder (`COMMAND_FILE`).
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Sequence
from pathlib import Path

import flopcli

from .config import DETECTOR_PRESETS, detector_config
from .dataset_info import DetectionDatasetInfo
from .optim import STUDY_RECIPE
from .run_config import DetectionRunConfig, detection_recipe

__all__ = ["COMMAND", "COMMAND_FILE", "HOW_FIELDS", "DetectionSpec"]

COMMAND = "flopwise-finetune-det"
COMMAND_FILE = "command.txt"  # in a study's folder: the command that reruns it
# How a study runs, never what it computes: not part of a sweep task's identity.
HOW_FIELDS = ("seeds", "checkpoint_every", "log_every", "workers", "eval_batch")

_field = flopcli.spec_field


@dataclasses.dataclass(frozen=True)
class DetectionSpec:
    """A detection fine-tuning study of one encoder: every setting of its runs and how many seeds.
    ``validate()`` checks every field (construction calls it); errors start with the field's name."""

    dataset: str = _field("coco_instances", "the detection dataset (flopdata.resolve: coco_instances or "
                                            "fmnist_scenes)")
    steps: int | None = _field(None, f"length in optimizer steps (none: the study's {STUDY_RECIPE.steps})",
                               flopcli.positive_int)
    batch: int = _field(STUDY_RECIPE.batch_size, "global batch size", flopcli.positive_int)
    image_size: int = _field(STUDY_RECIPE.image_size, "training and evaluation size in pixels",
                             flopcli.positive_int)
    detector: str = _field("vitdet", f"detector preset: one of {', '.join(sorted(DETECTOR_PRESETS))}")
    lr: float = _field(STUDY_RECIPE.peak_lr, "peak learning rate (AdamW)", flopcli.positive_float)
    wd: float = _field(STUDY_RECIPE.weight_decay, "weight decay", flopcli.non_negative_float)
    layer_decay: float = _field(0.7, "layer-wise LR decay in (0, 1] (1: none)", flopcli.positive_float)
    drop_path: float = _field(STUDY_RECIPE.drop_path, "stochastic depth of the backbone in [0, 1)",
                              flopcli.non_negative_float)
    warmup: int | None = _field(None, f"linear warmup steps (none: the study's {STUDY_RECIPE.warmup_steps}/"
                                      f"{STUDY_RECIPE.steps} of the run)", flopcli.non_negative_int)
    seeds: int = _field(1, "fine-tuning seeds 0..N-1; the median is reported", flopcli.positive_int)
    max_objects: int = _field(100, "objects padded per image (an image with more is an error unless --truncate)",
                              flopcli.positive_int)
    truncate: bool = _field(False, "keep the first --max-objects of a crowded image")
    min_scale: float = _field(0.1, "large-scale jitter of training: the smallest scale (ViTDet's 0.1)",
                              flopcli.positive_float)
    max_scale: float = _field(2.0, "large-scale jitter of training: the largest scale (ViTDet's 2.0)",
                              flopcli.positive_float)
    eval_batch: int = _field(8, "batch size of the evaluation", flopcli.positive_int)
    checkpoint_every: int = _field(500, "steps between checkpoints", flopcli.positive_int)
    log_every: int = _field(50, "steps between metrics.jsonl records", flopcli.positive_int)
    workers: int = _field(0, "grain decoding worker processes", flopcli.non_negative_int)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """ValueError starting with the field's name for the first field that is wrong."""
        for name in ("batch", "image_size", "seeds", "max_objects", "eval_batch", "checkpoint_every", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: expected >= 1")
        for name, low in (("steps", 1), ("warmup", 0), ("workers", 0)):
            value = getattr(self, name)
            if value is None and name != "workers":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}={value!r}: expected >= {low}"
                                 + (" (or None for the study's 22,000)" if name == "steps" else ""))
        for name in ("lr", "wd", "layer_decay", "drop_path", "min_scale", "max_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name}={value!r}: expected a number")
        if not 0 < self.layer_decay <= 1:
            raise ValueError(f"layer_decay={self.layer_decay!r}: expected a value in (0, 1] (1: none)")
        if not self.lr > 0 or not self.wd >= 0:
            raise ValueError(f"lr={self.lr!r}, wd={self.wd!r}: expected lr > 0 and wd >= 0")
        if not 0 <= self.drop_path < 1:
            raise ValueError(f"drop_path={self.drop_path!r}: expected a probability in [0, 1)")
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(f"min_scale={self.min_scale!r}, max_scale={self.max_scale!r}: expected "
                             "0 < min <= max")
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"dataset={self.dataset!r}: expected a dataset name or directory")
        if self.detector not in DETECTOR_PRESETS:
            raise ValueError(f"detector={self.detector!r}: preset={self.detector!r} is not a detector preset; "
                             f"expected one of {sorted(DETECTOR_PRESETS)}")
        if self.warmup is not None and not self.warmup < self.total_steps:
            raise ValueError(f"warmup={self.warmup}: expected 0 <= warmup < steps={self.total_steps}")
        if not isinstance(self.truncate, bool):
            raise ValueError(f"truncate={self.truncate!r}: expected True or False")

    @property
    def total_steps(self) -> int:
        return STUDY_RECIPE.steps if self.steps is None else self.steps

    def run_config(self, info: DetectionDatasetInfo, *, mean: Sequence[float] | None = None,
                   std: Sequence[float] | None = None) -> DetectionRunConfig:
        """The `DetectionRunConfig` of seed 0 on the dataset ``info`` describes (``mean``/``std``: a timm
        weights file's input normalisation where its own files do not say)."""
        recipe = detection_recipe(steps=self.total_steps, batch_size=self.batch, image_size=self.image_size,
                                  lr=self.lr, wd=self.wd, warmup=self.warmup, drop_path=self.drop_path,
                                  layer_decay=None if self.layer_decay == 1.0 else self.layer_decay)
        return DetectionRunConfig(
            dataset_dir=info.directory, recipe=recipe, eval_split=info.eval_split,
            detector=detector_config(self.detector, num_classes=info.num_classes, image_size=self.image_size),
            max_objects=self.max_objects, truncate=self.truncate, min_scale=self.min_scale,
            max_scale=self.max_scale, eval_batch_size=self.eval_batch, checkpoint_every=self.checkpoint_every,
            log_every=self.log_every, workers=self.workers, encoder_mean=None if mean is None else tuple(mean),
            encoder_std=None if std is None else tuple(std))

    def command(self, *, encoder: str, out_dir: str | Path, model: str | None, data_dir: str | None,
                seeds: Sequence[int] | None = None, mean: Sequence[float] | None = None,
                std: Sequence[float] | None = None) -> str:
        """The ``flopwise-finetune-det`` command that runs this study (every field spelled out). ``seeds``: the
        seeds run (0..N-1; the command runs 0..max)."""
        spec = self if not seeds else dataclasses.replace(self, seeds=max(seeds) + 1)
        words = [COMMAND, "--encoder", encoder, *(["--model", model] if model else []), "--out", str(out_dir),
                 *(["--data-dir", data_dir] if data_dir else []),
                 *(["--mean", *map(repr, mean)] if mean is not None else []),
                 *(["--std", *map(repr, std)] if std is not None else []), *flopcli.spec_to_flags(spec)]
        return shlex.join(words)

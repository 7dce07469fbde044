"""`DetectionRunConfig`: everything that defines one detection fine-tuning run (one seed) on one dataset, and
the study's warmup scaled to shorter runs.

The run is the detector (`DetectorConfig`: architecture, sampling, image size, classes) + the optimisation
(`DetectionRecipe`: steps, batch, AdamW, warmup + step decay, layer decay, drop path) + the data (directory,
splits, padded object count) + how it is executed (cadences, workers; these may change on resume).

Warmup at other lengths (`detection_warmup_steps`): ViTDet's 250 steps are 1.14% of the study's 22,000; a
shorter run keeps that fraction (at least 1 step, at most 250), as `segtransfer.segmentation.protocol.warmup_steps` does
for segmentation: a 300-step CPU run warms up for 3 steps.
"""

from __future__ import annotations

import dataclasses

from .config import DetectorConfig
from .optim import STUDY_RECIPE, DetectionRecipe

__all__ = ["DetectionRunConfig", "detection_warmup_steps", "detection_recipe", "HOW_FIELDS"]

# How a run is executed, never what it computes: may differ when it is resumed.
HOW_FIELDS = ("checkpoint_every", "keep_checkpoints", "log_every", "workers", "eval_batch_size")


def detection_warmup_steps(total_steps: int) -> int:
    """The study's warmup fraction (250 / 22,000) of a run of ``total_steps``, in [1, 250], below the run length
    (0 for a 1-step run)."""
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"total_steps={total_steps!r}: expected a positive int")
    scaled = round(total_steps * STUDY_RECIPE.warmup_steps / STUDY_RECIPE.steps)
    return min(STUDY_RECIPE.warmup_steps, max(1, scaled), total_steps - 1)


def detection_recipe(
    *, steps: int, batch_size: int, image_size: int, lr: float = STUDY_RECIPE.peak_lr,
    wd: float = STUDY_RECIPE.weight_decay, layer_decay: float | None = STUDY_RECIPE.layer_decay,
    warmup: int | None = None, drop_path: float = STUDY_RECIPE.drop_path,
) -> DetectionRecipe:
    """`STUDY_RECIPE` at another length, batch, size or learning rate: the decays stay at 8/9 and 26/27 of the
    run, the warmup is `detection_warmup_steps` unless ``warmup`` is given."""
    return dataclasses.replace(
        STUDY_RECIPE, steps=steps, batch_size=batch_size, image_size=image_size, peak_lr=lr, weight_decay=wd,
        layer_decay=layer_decay, drop_path=drop_path,
        warmup_steps=detection_warmup_steps(steps) if warmup is None else warmup)


@dataclasses.dataclass(frozen=True)
class DetectionRunConfig:
    """One detection fine-tuning run.

    ``dataset_dir``: a TFDS directory with ``image`` + ``objects/{bbox,label}`` (+ ``objects/mask``): see
    `segtransfer.detection.data`. ``detector.image_size`` must equal ``recipe.image_size``. ``max_objects``:
    objects padded per image (an image with more is an error naming it, unless ``truncate``). ``min_scale`` /
    ``max_scale``: the large-scale-jitter range of training (ViTDet's 0.1-2.0). Evaluation runs over every image
    of ``eval_split`` at the end (pycocotools). ``encoder_mean``/``encoder_std``: the input normalisation of a timm
    weights file whose own files do not say (`segtransfer.encoders.timm_normalisation`; None: from its files).
    """

    dataset_dir: str
    detector: DetectorConfig
    recipe: DetectionRecipe
    seed: int = 0
    train_split: str = "train"
    eval_split: str = "validation"
    max_objects: int = 100
    truncate: bool = False
    min_scale: float = 0.1
    max_scale: float = 2.0
    eval_batch_size: int = 8
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 50
    workers: int = 0
    encoder_mean: tuple[float, ...] | None = None
    encoder_std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.detector, DetectorConfig):
            raise TypeError(f"detector={type(self.detector).__name__}: expected a DetectorConfig")
        if not isinstance(self.recipe, DetectionRecipe):
            raise TypeError(f"recipe={type(self.recipe).__name__}: expected a DetectionRecipe")
        for name in ("max_objects", "eval_batch_size", "checkpoint_every", "keep_checkpoints", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DetectionRunConfig.{name}={value!r}: expected a positive int")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            raise ValueError(f"DetectionRunConfig.workers={self.workers!r}: expected an int >= 0")
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(f"DetectionRunConfig.min_scale={self.min_scale!r}, max_scale={self.max_scale!r}: expected "
                             "0 < min_scale <= max_scale")
        if self.recipe.image_size != self.detector.image_size:
            raise ValueError(f"recipe.image_size={self.recipe.image_size} but detector.image_size="
                             f"{self.detector.image_size}; expected the same input size")

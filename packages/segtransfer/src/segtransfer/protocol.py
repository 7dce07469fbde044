"""The study's fine-tuning protocol as data: grid, seeds, length in epochs, warmup, and one run's `FinetuneConfig`.

Koppula et al. 2022, A.4 (DESIGN.md section 5): 80 epochs of ADE20K train (20,210 images) at batch 16, i.e.
101,050 steps, of which the first 1,500 warm the learning rate up linearly, then polynomial (power 1) decay to 0;
LR x WD grid {1e-5, 5e-5, 1e-4, 5e-4} x {0.1, 0.05, 0.01}; the reported number is the median over 5 seeds.

Warmup at other lengths (`warmup_steps`): the study's *fraction* of the run, 1500 / 101050 = 1.48%, capped at the
study's 1,500 steps, at least 1 step, and always shorter than the run. A 300-step CPU run thus warms up for 4
steps, a study-length run for exactly 1,500; a fixed 1,500-step warmup would make every short run warmup-only.
"""

from __future__ import annotations

import dataclasses
import math

from runloop import to_steps

from .photometric import PHOTOMETRIC

__all__ = [
    "STUDY_EPOCHS",
    "STUDY_BATCH_SIZE",
    "STUDY_WARMUP_STEPS",
    "ADE20K_TRAIN_SIZE",
    "STUDY_STEPS",
    "LR_GRID",
    "WD_GRID",
    "STUDY_SEEDS",
    "EVAL_MODES",
    "finetune_steps",
    "warmup_steps",
    "FinetuneConfig",
]

STUDY_EPOCHS = 80
STUDY_BATCH_SIZE = 16
STUDY_WARMUP_STEPS = 1500
ADE20K_TRAIN_SIZE = 20_210
STUDY_STEPS = math.ceil(STUDY_EPOCHS * ADE20K_TRAIN_SIZE / STUDY_BATCH_SIZE)  # 101,050
LR_GRID = (1e-5, 5e-5, 1e-4, 5e-4)
WD_GRID = (0.1, 0.05, 0.01)
STUDY_SEEDS = 5
EVAL_MODES = ("center_crop", "slide")


def finetune_steps(
    *, batch_size: int, dataset_size: int, epochs: float | int | None = None, steps: int | None = None
) -> int:
    """Optimizer steps for a run given in epochs (rounded up: a last partial batch is a full step) or in steps
    (`runloop.to_steps`). Exactly one of ``epochs`` and ``steps``. Example: ``finetune_steps(epochs=80,
    dataset_size=20210, batch_size=16)`` -> 101050.
    """
    if (epochs is None) == (steps is None):
        raise ValueError(f"epochs={epochs!r}, steps={steps!r}: give exactly one of them")
    return to_steps(steps=steps, epochs=epochs, batch_size=batch_size, dataset_size=dataset_size)


def warmup_steps(total_steps: int) -> int:
    """The study's warmup scaled to a run of ``total_steps`` (see the module docstring); 0 for a 1-step run."""
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"total_steps={total_steps!r}: expected a positive int")
    scaled = round(total_steps * STUDY_WARMUP_STEPS / STUDY_STEPS)
    return min(STUDY_WARMUP_STEPS, max(1, scaled), total_steps - 1)


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """Everything that defines one fine-tuning run (one LR, WD and seed) on one dataset.

    ``dataset_dir``: a TFDS directory with ``image`` + ``segmentation_mask`` (`segtransfer.data`); ``num_classes``
    labels 0..k-1, 255 ignored. ``warmup`` None = `warmup_steps(steps)`. ``eval_mode``: "center_crop" (the study)
    or "slide" (mmseg sliding window over the whole image, short side resized to ``image_size``).
    ``head_channels``/``norm_groups``: the FCN head's width (256 and 32 in the study).
    ``checkpoint_every``: steps between checkpoints (the last step always saves one). ``sam_rho`` (None: off):
    sharpness-aware minimisation with this neighbourhood radius (Foret et al. 2021: 0.05), a fine-tuning option
    (`runloop.sam`); each step then computes a second gradient (about twice the FLOPs).
    ``tensorboard``: also write TensorBoard event files to ``<run dir>/tensorboard`` (needs ``tensorboardX``).
    ``encoder_mean``/``encoder_std``: the input normalisation of a timm weights file whose own files do not say
    (`segtransfer.encoders.timm_normalisation`; None: from its files). ``photometric``: the training images'
    colour jitter, a name of `segtransfer.photometric.PHOTOMETRIC` ("byol", the study's).
    """

    dataset_dir: str
    num_classes: int
    steps: int
    lr: float
    wd: float
    batch_size: int = STUDY_BATCH_SIZE
    image_size: int = 512
    seed: int = 0
    warmup: int | None = None
    eval_mode: str = "center_crop"
    train_split: str = "train"
    eval_split: str = "validation"
    eval_batch_size: int = 16
    head_channels: int = 256
    norm_groups: int = 32
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 50
    workers: int = 0
    tensorboard: bool = False
    sam_rho: float | None = None
    photometric: str = "byol"
    encoder_mean: tuple[float, ...] | None = None
    encoder_std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("num_classes", "steps", "batch_size", "image_size", "eval_batch_size", "head_channels",
                     "norm_groups", "checkpoint_every", "keep_checkpoints", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"FinetuneConfig.{name}={value!r}: expected a positive int")
        if not self.lr > 0:
            raise ValueError(f"FinetuneConfig.lr={self.lr!r}: expected > 0")
        if not self.wd >= 0:
            raise ValueError(f"FinetuneConfig.wd={self.wd!r}: expected >= 0")
        if self.sam_rho is not None and not self.sam_rho > 0:
            raise ValueError(f"FinetuneConfig.sam_rho={self.sam_rho!r}: expected None (no SAM) or a radius > 0")
        if self.eval_mode not in EVAL_MODES:
            raise ValueError(f"FinetuneConfig.eval_mode={self.eval_mode!r}: expected one of {EVAL_MODES}")
        if self.warmup is not None and not 0 <= self.warmup < self.steps:
            raise ValueError(f"FinetuneConfig.warmup={self.warmup!r}: expected 0 <= warmup < steps={self.steps}")
        if self.photometric not in PHOTOMETRIC:
            raise ValueError(f"FinetuneConfig.photometric={self.photometric!r}: expected one of {sorted(PHOTOMETRIC)}")
        if self.head_channels % self.norm_groups:
            raise ValueError(
                f"FinetuneConfig.head_channels={self.head_channels} is not divisible by "
                f"norm_groups={self.norm_groups}"
            )

    @property
    def warmup_steps(self) -> int:
        return warmup_steps(self.steps) if self.warmup is None else self.warmup

"""The study's fine-tuning protocol as data: grid, seeds, length in epochs, warmup (`SegmentationSpec` uses them).

Koppula et al. 2022, A.4 (docs/design.md, the transfer protocol): 80 epochs of ADE20K train (20,210 images) at
batch 16, i.e. 101,050 steps, of which the first 1,500 warm the learning rate up linearly, then polynomial
(power 1) decay to 0; LR x WD grid {1e-5, 5e-5, 1e-4, 5e-4} x {0.1, 0.05, 0.01}; the reported number is the
median over 5 seeds.

Warmup at other lengths (`warmup_steps`): the study's *fraction* of the run, 1500 / 101050 = 1.48%, capped at the
study's 1,500 steps, at least 1 step, and always shorter than the run. A 300-step CPU run thus warms up for 4
steps, a study-length run for exactly 1,500; a fixed 1,500-step warmup would make every short run warmup-only.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from runloop import to_steps

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
    "study_grid",
    "warmup_steps",
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


def study_grid(lrs: Sequence[float], wds: Sequence[float]) -> list[tuple[float, float]]:
    """All (lr, wd) pairs, LR-major (the order runs are done in)."""
    return list(itertools.product(lrs, wds))

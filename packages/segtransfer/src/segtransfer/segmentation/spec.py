"""Every option of a segmentation fine-tuning study, declared once: `SegmentationSpec`, and one run of it.

`SegmentationSpec` is what ``flopwise-finetune-seg`` parses (its flags are generated from the fields:
`flopcli.add_spec_flags`) and what a sweep's segmentation task holds (its canonical JSON is hashed into the
task's id). Defaults are the study's ADE20K protocol (Koppula et al. 2022, appendix A.4;
`segtransfer.segmentation.protocol`): 80 epochs at batch 16, 512 px, the 4 x 3 LR x WD grid, the median of 5 seeds, a
256-channel FCN head, BYOL's colour jitter, evaluation on a centre crop. `run_segmentation`/`read_segmentation`
(`segtransfer.segmentation.study`) run one in a folder and read its ``result.json`` back.

`SegmentationRun` is one run of a spec once the dataset and the grid have answered: the spec, the dataset
directory, class count and evaluation split, the length in steps, one (lr, wd) and one seed. Its ``to_json()``
is the ``finetune`` record of the run's ``config.json`` (the same-run check on resume compares it), in the form
run directories have always had.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Sequence
from typing import Any

import flopcli

from .device_augment import AUGMENT_MODES
from .photometric import PHOTOMETRIC
from .protocol import (
    EVAL_MODES,
    LR_GRID,
    STUDY_BATCH_SIZE,
    STUDY_EPOCHS,
    STUDY_SEEDS,
    WD_GRID,
    finetune_steps,
    study_grid,
)
from .protocol import warmup_steps as scaled_warmup

__all__ = ["COMMAND", "COMMAND_FILE", "SegmentationRun", "SegmentationSpec"]

COMMAND = "flopwise-finetune-seg"
COMMAND_FILE = "command.txt"  # in a study's folder: the command that reruns it


_option = flopcli.spec_field

@dataclasses.dataclass(frozen=True)
class SegmentationSpec:
    """A segmentation fine-tuning study of one encoder: its grid, seeds and every setting of its runs.

    Defaults: the study's ADE20K protocol (module docstring). SAM is off by default (``sam_rho=None``); with it,
    ``sam_shards=None`` (the default) perturbs once from the whole batch's gradient, the form every earlier run
    used, and ``sam_shards=K`` perturbs each of K equal slices of the batch along its own gradient, as
    google-research/sam does per device (Foret et al. 2021 found that smaller m generalises better;
    `runloop.optim.sam`). ``validate()`` checks every field (construction
    calls it: a spec that exists is valid); errors start with the field's name."""

    dataset: str = _option("ade20k", "the segmentation dataset (flopdata.resolve: a name such as ade20k or "
                                     "fmnist_scenes)")
    steps: int | None = _option(None, "length in optimizer steps (none: given by --epochs)", flopcli.positive_int)
    epochs: float | None = _option(None, f"length in epochs of the training split (none with no --steps: the "
                                         f"study's {STUDY_EPOCHS})", flopcli.positive_float)
    batch: int = _option(STUDY_BATCH_SIZE, "batch size (global, over all devices)", flopcli.positive_int)
    image_size: int = _option(512, "training crop and evaluation size in pixels", flopcli.positive_int)
    lrs: tuple[float, ...] = _option(LR_GRID, "learning rates of the grid (one value: no selection)",
                                     flopcli.positive_float)
    wds: tuple[float, ...] = _option(WD_GRID, "weight decays of the grid (one value: no selection)",
                                     flopcli.non_negative_float)
    seeds: int = _option(STUDY_SEEDS, "fine-tuning seeds 0..N-1 of the chosen (lr, wd); the median is reported",
                         flopcli.positive_int)
    head_channels: int = _option(256, "channels of the FCN head's two 3x3 convolutions", flopcli.positive_int)
    norm_groups: int = _option(32, "group-norm groups of the FCN head (divides --head-channels)",
                               flopcli.positive_int)
    eval_mode: str = _option("center_crop", f"evaluation: one of {', '.join(EVAL_MODES)} (slide: mmseg's sliding "
                                            "window over the whole image, short side resized to --image-size)")
    warmup: int | None = _option(None, "linear warmup steps (none: the study's 1,500 of 101,050 steps scaled to "
                                       "the run)", flopcli.non_negative_int)
    checkpoint_every: int = _option(500, "steps between checkpoints (the last step always saves one)",
                                    flopcli.positive_int)
    log_every: int = _option(50, "steps between metrics.jsonl records", flopcli.positive_int)
    workers: int = _option(0, "grain decoding worker processes (0: in the main process)", flopcli.non_negative_int)
    sam_rho: float | None = _option(None, "sharpness-aware minimisation's radius (Foret et al. 2021: 0.05; none: "
                                          "off; about twice the FLOPs per step)", flopcli.positive_float)
    sam_shards: int | None = _option(
        None, "SAM per device, google-research/sam's form: the batch cut into this many equal slices (one per "
              "device in their loop), each perturbed along its own gradient, the slices' SAM gradients averaged; "
              "Foret et al. 2021 found this smaller m generalises better. none (the default): one perturbation "
              "from the whole batch's gradient, the form every earlier run used (another default would change "
              "their results); 1 is that same computation. Needs --sam-rho; divides --batch",
        flopcli.positive_int)
    photometric: str = _option("byol", f"colour jitter of the training images: one of {', '.join(PHOTOMETRIC)} "
                                       "(byol: the study's)")
    augment: str = _option("host", f"where training images are rescaled, cropped and flipped: one of "
                                   f"{', '.join(AUGMENT_MODES)} (device: batched inside the compiled step, for a "
                                   "dataset whose images have one size and --photometric none; auto: device when "
                                   "those hold)")
    eval_batch_size: int = _option(16, "batch size of the centre-crop evaluation", flopcli.positive_int)
    keep_checkpoints: int = _option(2, "checkpoints kept per run", flopcli.positive_int)
    tensorboard: bool = _option(False, "also write TensorBoard event files to <run>/tensorboard (needs "
                                       "tensorboardX)")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """ValueError starting with the field's name for the first field that is wrong."""
        if self.steps is not None and self.epochs is not None:
            raise ValueError(f"steps={self.steps} and epochs={self.epochs}: give the length one way only")
        for name in ("steps", "epochs", "warmup", "sam_rho"):
            value = getattr(self, name)
            low = 0 if name == "warmup" else None
            kind = (int,) if name in ("steps", "warmup") else (int, float)
            if value is not None and (isinstance(value, bool) or not isinstance(value, kind)
                                      or not (value >= low if low is not None else value > 0)):
                raise ValueError(f"{name}={value!r}: expected None or a number {'>= 0' if low == 0 else '> 0'}")
        for name in ("batch", "image_size", "seeds", "head_channels", "norm_groups", "checkpoint_every",
                     "log_every", "eval_batch_size", "keep_checkpoints"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: expected an int >= 1")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            raise ValueError(f"workers={self.workers!r}: expected an int >= 0")
        for name, ok in (("lrs", lambda v: v > 0), ("wds", lambda v: v >= 0)):
            values = getattr(self, name)
            numbers = all(isinstance(v, int | float) and not isinstance(v, bool) and ok(v) for v in values)
            if not isinstance(values, tuple) or not values or not numbers:
                raise ValueError(f"{name}={values!r}: expected a tuple of at least one number, each "
                                 f"{'> 0' if name == 'lrs' else '>= 0'}")
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"dataset={self.dataset!r}: expected a dataset name or directory")
        if self.eval_mode not in EVAL_MODES:
            raise ValueError(f"eval_mode={self.eval_mode!r}: expected one of {EVAL_MODES}")
        if self.photometric not in PHOTOMETRIC:
            raise ValueError(f"photometric={self.photometric!r}: expected one of {sorted(PHOTOMETRIC)}")
        if self.augment not in AUGMENT_MODES:
            raise ValueError(f"augment={self.augment!r}: expected one of {AUGMENT_MODES}")
        if self.augment == "device" and self.photometric != "none":
            raise ValueError(f"augment='device' with photometric={self.photometric!r}: the device path has no "
                             "colour jitter; use photometric='none' or augment='host'")
        if self.head_channels % self.norm_groups:
            raise ValueError(f"norm_groups={self.norm_groups} does not divide head_channels={self.head_channels}")
        if self.sam_shards is not None:
            if isinstance(self.sam_shards, bool) or not isinstance(self.sam_shards, int) or self.sam_shards < 1:
                raise ValueError(f"sam_shards={self.sam_shards!r}: expected None or an int >= 1")
            if self.sam_rho is None:
                raise ValueError(f"sam_shards={self.sam_shards}: per-device SAM needs sam_rho (the radius)")
            if self.batch % self.sam_shards:
                raise ValueError(f"sam_shards={self.sam_shards} does not divide batch={self.batch}")
        if self.warmup is not None and self.steps is not None and self.warmup >= self.steps:
            raise ValueError(f"warmup={self.warmup}: expected 0 <= warmup < steps={self.steps}")
        if not isinstance(self.tensorboard, bool):
            raise ValueError(f"tensorboard={self.tensorboard!r}: expected True or False")

    @property
    def grid(self) -> list[tuple[float, float]] | None:
        """Every (lr, wd) pair, LR-major (the order runs are done in); None for one pair (no selection)."""
        return None if len(self.lrs) * len(self.wds) == 1 else study_grid(self.lrs, self.wds)

    def total_steps(self, train_size: int) -> int:
        """The run's length in steps on a training split of ``train_size`` images."""
        return finetune_steps(batch_size=self.batch, dataset_size=train_size, steps=self.steps,
                              epochs=None if self.steps is not None else (self.epochs or STUDY_EPOCHS))

    def command(self, *, encoder: str, out_dir: str, model: str | None, data_dir: str | None,
                seeds: Sequence[int] | None = None, mean: Sequence[float] | None = None,
                std: Sequence[float] | None = None) -> str:
        """The ``flopwise-finetune-seg`` command that runs this study (every field spelled out, so the
        command's own defaults do not matter). ``seeds``: the seeds run (0..N-1; the command runs 0..max)."""
        spec = self if seeds is None else dataclasses.replace(self, seeds=max(seeds) + 1)
        words = [COMMAND, "--encoder", encoder, *(["--model", model] if model else []), "--out", out_dir,
                 *(["--data-dir", data_dir] if data_dir else []),
                 *(["--mean", *map(repr, mean)] if mean is not None else []),
                 *(["--std", *map(repr, std)] if std is not None else []),
                 # --steps and --epochs exclude each other: the one left at None is left out (None is the default)
                 *flopcli.spec_to_flags(spec, skip=[n for n in ("steps", "epochs") if getattr(spec, n) is None])]
        return shlex.join(words)


@dataclasses.dataclass(frozen=True)
class SegmentationRun:
    """One fine-tuning run of ``spec``: on ``dataset_dir`` (``num_classes`` labels, evaluated on ``eval_split``)
    for ``steps`` steps at one ``lr``, ``wd`` and ``seed``."""

    spec: SegmentationSpec
    dataset_dir: str
    num_classes: int
    eval_split: str
    steps: int
    lr: float
    wd: float
    seed: int = 0
    train_split: str = "train"
    # A timm weights file's input normalisation where its own files do not say (`encoders.timm_normalisation`):
    # a property of the encoder, not of the study, so a run holds it beside the spec (`--mean/--std`).
    encoder_mean: tuple[float, ...] | None = None
    encoder_std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        self.spec.validate()
        for name in ("num_classes", "steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: expected an int >= 1")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r}: expected > 0")
        if not self.wd >= 0:
            raise ValueError(f"wd={self.wd!r}: expected >= 0")
        if self.spec.warmup is not None and self.spec.warmup >= self.steps:
            raise ValueError(f"warmup={self.spec.warmup!r}: expected 0 <= warmup < steps={self.steps}")

    @property
    def warmup_steps(self) -> int:
        return scaled_warmup(self.steps) if self.spec.warmup is None else self.spec.warmup

    def to_json(self) -> dict[str, Any]:
        """The run's record in ``config.json`` (the keys runs have always recorded)."""
        s = self.spec
        return {"dataset_dir": self.dataset_dir, "num_classes": self.num_classes, "steps": self.steps,
                "lr": self.lr, "wd": self.wd, "batch_size": s.batch, "image_size": s.image_size, "seed": self.seed,
                "warmup": s.warmup, "eval_mode": s.eval_mode, "train_split": self.train_split,
                "eval_split": self.eval_split, "eval_batch_size": s.eval_batch_size,
                "head_channels": s.head_channels, "norm_groups": s.norm_groups,
                "checkpoint_every": s.checkpoint_every, "keep_checkpoints": s.keep_checkpoints,
                "log_every": s.log_every, "workers": s.workers, "tensorboard": s.tensorboard,
                "sam_rho": s.sam_rho, "sam_shards": s.sam_shards, "photometric": s.photometric, "augment": s.augment,
                "encoder_mean": self.encoder_mean, "encoder_std": self.encoder_std}

"""How the engine runs a training (not what it trains): length, batch, cadences, NaN policy, sharding, reporting.

Every field is checked when the config is built, before any side effect (unknown hardware or region names,
a missing ``tensorboardX``, a bad cadence): a run directory is never created for a run that cannot start.
"""

from __future__ import annotations

import dataclasses

import flopmeter

from .metrics_log import check_tensorboard
from .nonfinite import OptionNames
from .sharding import PARAM_MODES

__all__ = ["LoopConfig"]

_POSITIVE = ("steps", "batch_size", "log_every", "checkpoint_every", "keep_checkpoints", "max_consecutive_skips")


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """``steps`` optimizer updates at global batch ``batch_size``.

    Cadences (steps): ``log_every`` (metrics.jsonl + progress line; also the host-sync interval),
    ``checkpoint_every`` (plus one at the end and one on a stop signal), ``eval_every`` (0: only at the end).
    ``keep_checkpoints``: newest checkpoints kept (plus the newest good one).
    ``on_nonfinite``: ``"raise"`` stops at the first non-finite step, ``"skip"`` drops such updates, at most
    ``max_consecutive_skips`` in a row. A checkpoint is *good* when its loss is finite and
    ``|loss| <= loss_band * max(1, |first logged loss|)``; the NaN hint points to the newest good one.
    ``param_sharding``: ``"replicate"`` or ``"fsdp"`` (parameters and optimizer state split over devices).
    ``measure_flops``: read the FLOPs of the compiled step (flopmeter) for the progress line and records.
    ``hardware``/``watts``/``region``: the CO2 estimate (`runloop.progress`). ``resume_from``: on resume, start
    from this kept checkpoint instead of the newest. ``option_names``: how users spell these options in hints.
    """

    steps: int
    batch_size: int
    log_every: int = 10
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    eval_every: int = 0
    on_nonfinite: str = "raise"
    max_consecutive_skips: int = 10
    loss_band: float = 10.0
    param_sharding: str = "replicate"
    measure_flops: bool = True
    tensorboard: bool = False
    hardware: str | None = None
    watts: float | None = None
    region: str = flopmeter.STUDY_REGION
    print_progress: bool = True
    resume_from: int | None = None
    option_names: OptionNames = OptionNames()

    # Fields that say how a run is executed or reported, never what it computes: they may change on resume.
    HOW_FIELDS = ("log_every", "checkpoint_every", "keep_checkpoints", "eval_every", "on_nonfinite",
                  "max_consecutive_skips", "loss_band", "param_sharding", "measure_flops", "tensorboard",
                  "hardware", "watts", "region", "print_progress", "resume_from", "option_names")

    def __post_init__(self) -> None:
        for name in _POSITIVE:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}; expected a positive integer")
        if isinstance(self.eval_every, bool) or not isinstance(self.eval_every, int) or self.eval_every < 0:
            raise ValueError(f"eval_every={self.eval_every!r}; expected an integer >= 0 (0: only at the end)")
        if self.on_nonfinite not in ("raise", "skip"):
            raise ValueError(f"on_nonfinite={self.on_nonfinite!r}; expected 'raise' or 'skip'")
        if self.param_sharding not in PARAM_MODES:
            raise ValueError(f"param_sharding={self.param_sharding!r}; expected one of {PARAM_MODES}")
        if not self.loss_band > 1.0:
            raise ValueError(f"loss_band={self.loss_band!r}; expected a factor > 1")
        if self.resume_from is not None and (isinstance(self.resume_from, bool) or not isinstance(
                self.resume_from, int) or self.resume_from < 0):
            raise ValueError(f"resume_from={self.resume_from!r}; expected None or a checkpoint step >= 0")
        if self.watts is not None and not self.watts > 0:
            raise ValueError(f"watts={self.watts!r}; expected a power per device > 0 (or None)")
        if self.hardware is not None:
            flopmeter.hardware(self.hardware)  # ValueError listing the known names
        flopmeter.region(self.region)
        if self.tensorboard:
            check_tensorboard()

    def record(self) -> dict:
        """The config as JSON data (for a run's config.json)."""
        return dataclasses.asdict(self)

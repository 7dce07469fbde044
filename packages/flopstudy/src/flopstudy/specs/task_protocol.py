"""Downstream tasks of a sweep: what a task must answer (`AbstractTask`), its result, and `Preempted`.

A task fine-tunes an encoder (a pre-training run directory or ``"scratch"``) for each requested seed in its own
folder and reads its result back. Kinds: ``segmentation`` (`flopstudy.stages.finetune.SegmentationTask`, mIoU),
``detection`` (`flopstudy.stages.detection.DetectionTask`, Mask R-CNN box AP) and ``layer_probe`` (the layer-wise
linear probe, `flopstudy.stages.layer_probe.LayerProbeTask`); another kind plugs in as an `AbstractTask` with its
settings dataclass and one entry in `flopstudy.stages.registry.TASKS`.

A task's settings are a frozen dataclass of plain values (its ``settings_type``); ``how_fields`` names those that
change only how it runs (cadences, workers, the seed count), which are left out of the task's identity.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["AbstractTask", "Preempted", "TaskResult"]


class Preempted(Exception):
    """A stage stopped early (SIGTERM/SIGINT) after checkpointing: not a failure; the next sweep resumes it."""


@dataclasses.dataclass(frozen=True)
class TaskResult:
    """A task's finished result: ``scores`` seed -> headline metric in %, the FLOPs of one fine-tuning run of
    the chosen configuration, ``flops_spent`` by every fine-tuning run done (grid and seeds), and ``extras``
    (extra table columns, e.g. the chosen learning rate)."""

    scores: Mapping[int, float]
    finetune_flops: float | None
    flops_spent: float | None = None
    extras: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class AbstractTask(abc.ABC):
    """One kind of downstream task (stateless; its settings come in every call)."""

    kind: ClassVar[str]
    score_metric: ClassVar[str]
    settings_type: ClassVar[type]
    how_fields: ClassVar[tuple[str, ...]]
    later_fields: ClassVar[tuple[str, ...]] = ()
    """Settings added after the kind's first release: left out of a task's identity while at their default, so
    the tasks of earlier sweeps keep their ids."""

    @abc.abstractmethod
    def label(self, settings: Any) -> str:
        """The results table's ``task`` column, e.g. ``"fmnist_scenes segmentation"``."""

    @abc.abstractmethod
    def seeds(self, settings: Any) -> tuple[int, ...]:
        """The fine-tuning seeds every point gets."""

    @abc.abstractmethod
    def datasets(self, settings: Any) -> tuple[str, ...]:
        """The datasets the task reads (the sweep makes sure they are built before any run)."""

    @abc.abstractmethod
    def check(self, settings: Any, *, data_dir: str | None) -> None:
        """ValueError naming what is wrong (e.g. a dataset that is not built), without building anything."""

    @abc.abstractmethod
    def run(self, settings: Any, *, encoder: str, model: str, out_dir: Path, seeds: Sequence[int],
            data_dir: str | None) -> None:
        """Fine-tunes ``encoder`` (a pre-training run directory or "scratch" of preset ``model``) for every seed
        in ``out_dir``, resuming what an interrupted call left and reusing finished seeds; writes the result
        file last, atomically. Raises `Preempted` when a signal stopped it, any other exception on failure."""

    @abc.abstractmethod
    def read(self, out_dir: Path) -> TaskResult | None:
        """The finished result in ``out_dir`` (None when there is none yet); ValueError naming a broken file
        (also one whose score is not a finite % in 0-100)."""

    @abc.abstractmethod
    def set_aside_result(self, out_dir: Path) -> Path | None:
        """Moves the result file in ``out_dir`` out of the way (kept for inspection; the next `run` writes a new
        one); returns where it went (None when there was none). A retry does this to a broken result."""

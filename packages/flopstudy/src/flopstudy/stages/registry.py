"""The registry of a sweep's downstream task kinds: ``segmentation`` (`flopstudy.stages.finetune.SegmentationTask`),
``detection`` (`flopstudy.stages.detection.DetectionTask`) and ``layer_probe``
(`flopstudy.stages.layer_probe.LayerProbeTask`), each an `flopstudy.specs.task_protocol.AbstractTask`; and a
task's identity (`task_spec`). Another kind plugs in as one more entry here. It sits above the task modules it
lists and below the sweep that looks tasks up, so neither imports the other's room back."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..specs.runs import TaskSpec
from ..specs.task_protocol import AbstractTask
from .detection import DetectionTask
from .finetune import SegmentationTask
from .layer_probe import LayerProbeTask

__all__ = ["TASKS", "get_task", "task_spec"]


def _registry() -> Mapping[str, AbstractTask]:
    return MappingProxyType({task.kind: task for task in (SegmentationTask(), DetectionTask(), LayerProbeTask())})


TASKS: Mapping[str, AbstractTask] = _registry()
"""Task kind -> task."""


def get_task(kind: str) -> AbstractTask:
    if kind not in TASKS:
        raise ValueError(f"task {kind!r}: expected one of {', '.join(TASKS)}")
    return TASKS[kind]


def task_spec(kind: str, settings: Any) -> TaskSpec:
    """The identity of a task: kind, label and the settings that change its result."""
    task = get_task(kind)
    defaults = {f.name: f.default for f in dataclasses.fields(settings)}
    values = {k: v for k, v in dataclasses.asdict(settings).items()
              if k not in task.how_fields and not (k in task.later_fields and v == defaults[k])}
    return TaskSpec(kind, task.label(settings), values)

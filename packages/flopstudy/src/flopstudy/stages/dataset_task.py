"""What the fine-tuning stage's tasks (segmentation, detection, layer probe) share: one dataset, ``seeds`` seeds,
and a ``result.json`` in the task folder.

`DatasetTask` answers `AbstractTask`'s ``label`` (``"<dataset> <noun>"``), ``seeds`` (0 .. ``settings.seeds``-1),
``datasets`` and the dataset part of ``check`` from settings with ``dataset`` and ``seeds`` fields, and ``read``
from ``result.json``: a missing file is no result yet, a broken one (not JSON, not this task's result, or a
score that is not a finite % in 0-100) a ValueError naming it; the subclass turns the file's content into a
`TaskResult` (`parse_result`). ``set_aside_result`` moves a broken file to ``result.broken.json`` for a retry.
"""

from __future__ import annotations

import abc
import json
import os
from pathlib import Path
from typing import Any, ClassVar

from ..results.finetune_outputs import RESULT_FILE
from ..results.rows import SCORE_RANGE
from ..specs.task_protocol import AbstractTask, TaskResult
from .datasets import check_dataset

__all__ = ["DatasetTask"]


class DatasetTask(AbstractTask):
    """An `AbstractTask` whose settings have ``dataset`` (a name) and ``seeds`` (a count)."""

    noun: ClassVar[str]
    """The task column's suffix, e.g. ``"segmentation"`` in ``"ade20k segmentation"``."""
    result_name: ClassVar[str]
    """What a broken ``result.json`` is not, e.g. ``"layer-probe"`` ("...: not a layer-probe result")."""

    def label(self, settings: Any) -> str:
        return f"{settings.dataset} {self.noun}"

    def seeds(self, settings: Any) -> tuple[int, ...]:
        return tuple(range(settings.seeds))

    def datasets(self, settings: Any) -> tuple[str, ...]:
        return (settings.dataset,)

    def check(self, settings: Any, *, data_dir: str | None) -> None:
        check_dataset(settings.dataset, data_dir=data_dir)

    @abc.abstractmethod
    def parse_result(self, result: Any) -> TaskResult:
        """The `TaskResult` of ``result.json``'s content; KeyError/TypeError/ValueError when it is not this
        task's result."""

    def read(self, out_dir: Path) -> TaskResult | None:
        path = Path(out_dir) / RESULT_FILE
        if not path.is_file():
            return None
        try:
            result = self.parse_result(json.loads(path.read_text()))
            for seed, score in result.scores.items():  # a NaN or 500% is no score: the file is broken
                if not SCORE_RANGE[0] <= score <= SCORE_RANGE[1]:
                    raise ValueError(f"seed {seed}'s {self.score_metric} is {score!r}%: expected a number in "
                                     f"{SCORE_RANGE[0]:g}-{SCORE_RANGE[1]:g}")
            return result
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: not a {self.result_name} result ({type(err).__name__}: {err})") from None

    def set_aside_result(self, out_dir: Path) -> Path | None:
        path = Path(out_dir) / RESULT_FILE
        if not path.is_file():
            return None
        target = path.with_name(f"{path.stem}.broken{path.suffix}")
        os.replace(path, target)
        return target

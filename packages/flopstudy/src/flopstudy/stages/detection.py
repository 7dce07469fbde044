"""The fine-tuning stage's adapter into segtransfer's detection: Mask R-CNN box AP as a sweep task.

A sweep's detection settings are a `segtransfer.DetectionSpec`, unchanged (``config.tasks.detection`` holds its
fields; the task's id hashes their canonical JSON less the fields that only say how it runs,
`flopstudy.stages.registry.task_spec`). The task folder's ``command.txt`` is the ``flopwise-finetune-det`` command
that reruns the task by hand. Calls ``segtransfer.run_detection`` in-process (as `flopstudy.stages.finetune` does for
segmentation): one engine run per seed in ``runs/seed<s>/`` and ``result.json`` (`segtransfer.DetectionResult`,
written last, atomically) with every seed's box and mask AP and the fine-tuning FLOPs. The study's detection
protocol has one recipe (ViTDet's), so there is no grid; asking for more seeds later reuses the finished runs.
A sweep config lists it as ``config.tasks.detection = dict(dataset=..., steps=..., ...)``; the table's score is
box AP in % (``score_metric`` "box AP") and the report draws its curves like any task's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from segtransfer import DetectionSpec, run_detection
from segtransfer.detection.spec import HOW_FIELDS

from ..specs.task_protocol import Preempted, TaskResult
from .dataset_task import DatasetTask

__all__ = ["DetectionTask"]


class DetectionTask(DatasetTask):
    kind: ClassVar[str] = "detection"
    noun: ClassVar[str] = "detection"
    result_name: ClassVar[str] = "detection"
    score_metric: ClassVar[str] = "box AP"
    settings_type: ClassVar[type] = DetectionSpec
    how_fields: ClassVar[tuple[str, ...]] = HOW_FIELDS

    def run(self, settings: DetectionSpec, *, encoder: str, model: str, out_dir: Path, seeds: Sequence[int],
            data_dir: str | None) -> None:
        result = run_detection(settings, encoder=encoder, out_dir=out_dir, model=model, seeds=list(seeds),
                               data_dir=data_dir, resume=(Path(out_dir) / "runs").is_dir())  # per-seed folders
        if result.get("status") == "preempted":
            raise Preempted(f"detection fine-tuning in {out_dir} was stopped; run the sweep again to resume it")

    def parse_result(self, result: dict[str, Any]) -> TaskResult:
        if result.get("task") != "detection":
            raise ValueError(f"task={result.get('task')!r}, expected 'detection'")
        scores = {int(s): float(ap) for s, ap in zip(result["seeds"], result["per_seed_box_ap"], strict=True)}
        extras = {"finetune_lr": result["lr"], "finetune_wd": result["wd"], "finetune_steps": result["steps"],
                  "mask_ap_median": result["mask"]["AP"]}
        return TaskResult(scores, result.get("finetune_flops"), result.get("finetune_flops_all_runs"), extras)

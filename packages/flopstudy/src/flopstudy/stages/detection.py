"""The fine-tuning stage's adapter into segtransfer's detection: Mask R-CNN box AP as a sweep task.

Calls ``segtransfer.detection.detection_study`` in-process (as `flopstudy.stages.finetune` does for
segmentation): one engine run per seed in ``runs/seed<s>/`` and ``result.json`` (`segtransfer.DetectionResult`,
written last, atomically) with every seed's box and mask AP and the fine-tuning FLOPs. The study's detection
protocol has one recipe (ViTDet's), so there is no grid; asking for more seeds later reuses the finished runs.
A sweep config lists it as ``config.tasks.detection = dict(dataset=..., steps=..., ...)``; the table's score is
box AP in % (``score_metric`` "box AP") and the report draws its curves like any task's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from segtransfer import detection
from segtransfer.detection import detection_study

from ..specs.ranges import check_ranges
from ..specs.task_protocol import Preempted, TaskResult
from .dataset_task import DatasetTask
from .datasets import resolve_dataset

__all__ = ["DetectionSettings", "DetectionTask"]


@dataclasses.dataclass(frozen=True)
class DetectionSettings:
    """Detection fine-tuning (defaults: the study's COCO protocol, appendix A.6: the ViTDet Mask R-CNN, 22,000
    steps at batch 64 and 1024 px, AdamW lr 1e-4, wd 0.1, layer decay 0.7, drop path 0.1).

    ``steps`` None = the study's 22,000; ``warmup`` None = the study's fraction of the run. ``detector``: a
    segtransfer detector preset (``"tiny"`` for 64 px CPU runs). ``layer_decay`` 1.0 = one learning rate.
    ``max_objects``: objects padded per image (an image with more fails the task unless ``truncate``).
    ``min_scale``/``max_scale``: the large-scale-jitter range (ViTDet's 0.1-2.0)."""

    dataset: str = "coco_instances"
    steps: int | None = None
    batch: int = 64
    image_size: int = 1024
    detector: str = "vitdet"
    lr: float = 1e-4
    wd: float = 0.1
    layer_decay: float = 0.7
    drop_path: float = 0.1
    warmup: int | None = None
    seeds: int = 1
    max_objects: int = 100
    truncate: bool = False
    min_scale: float = 0.1
    max_scale: float = 2.0
    eval_batch: int = 8
    checkpoint_every: int = 500
    log_every: int = 50
    workers: int = 0

    def __post_init__(self) -> None:
        for name in ("batch", "image_size", "seeds", "max_objects", "eval_batch", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r}: expected >= 1")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps={self.steps!r}: expected >= 1 (or None for the study's 22,000)")
        if not 0 < self.layer_decay <= 1:
            raise ValueError(f"layer_decay={self.layer_decay!r}: expected a value in (0, 1] (1: none)")
        if not self.lr > 0 or not self.wd >= 0:
            raise ValueError(f"lr={self.lr!r}, wd={self.wd!r}: expected lr > 0 and wd >= 0")
        check_ranges(self, {"lr": ">0", "wd": ">=0", "warmup": ">=0", "workers": ">=0", "min_scale": ">0",
                            "max_scale": ">0", "drop_path": ">=0"})
        if not self.drop_path < 1:
            raise ValueError(f"drop_path={self.drop_path!r}: expected a probability in [0, 1)")
        if not self.min_scale <= self.max_scale:
            raise ValueError(f"min_scale={self.min_scale!r}, max_scale={self.max_scale!r}: expected min <= max")


class DetectionTask(DatasetTask):
    kind: ClassVar[str] = "detection"
    noun: ClassVar[str] = "detection"
    result_name: ClassVar[str] = "detection"
    score_metric: ClassVar[str] = "box AP"
    settings_type: ClassVar[type] = DetectionSettings
    how_fields: ClassVar[tuple[str, ...]] = ("seeds", "checkpoint_every", "log_every", "workers", "eval_batch")

    def check(self, settings: DetectionSettings, *, data_dir: str | None) -> None:
        # both raise a ValueError naming the bad setting (an unknown preset lists the valid ones)
        detection.detector_config(settings.detector, num_classes=1, image_size=settings.image_size)
        detection.detection_recipe(steps=settings.steps or detection.STUDY_RECIPE.steps, batch_size=settings.batch,
                                   image_size=settings.image_size, warmup=settings.warmup)
        super().check(settings, data_dir=data_dir)

    def config(self, settings: DetectionSettings, *, data_dir: str | None) -> Any:
        """The `segtransfer.detection.DetectionRunConfig` of seed 0 (the dataset resolved, built if embedded)."""
        info = detection.describe_detection_dataset(resolve_dataset(settings.dataset, data_dir=data_dir))
        recipe = detection.detection_recipe(
            steps=settings.steps or detection.STUDY_RECIPE.steps, batch_size=settings.batch,
            image_size=settings.image_size, lr=settings.lr, wd=settings.wd,
            layer_decay=None if settings.layer_decay == 1.0 else settings.layer_decay, warmup=settings.warmup,
            drop_path=settings.drop_path)
        return detection.DetectionRunConfig(
            dataset_dir=info.directory, recipe=recipe, eval_split=info.eval_split,
            detector=detection.detector_config(settings.detector, num_classes=info.num_classes,
                                               image_size=settings.image_size),
            max_objects=settings.max_objects, truncate=settings.truncate, min_scale=settings.min_scale,
            max_scale=settings.max_scale, eval_batch_size=settings.eval_batch,
            checkpoint_every=settings.checkpoint_every, log_every=settings.log_every, workers=settings.workers)

    def run(self, settings: DetectionSettings, *, encoder: str, model: str, out_dir: Path, seeds: Sequence[int],
            data_dir: str | None) -> None:
        result = detection_study(self.config(settings, data_dir=data_dir), encoder=encoder, out_dir=out_dir,
                                 dataset=settings.dataset, model=model, seeds=list(seeds),
                                 resume=(Path(out_dir) / "runs").is_dir())  # segtransfer's per-seed folders
        if result.get("status") == "preempted":
            raise Preempted(f"detection fine-tuning in {out_dir} was stopped; run the sweep again to resume it")

    def parse_result(self, result: dict[str, Any]) -> TaskResult:
        if result.get("task") != "detection":
            raise ValueError(f"task={result.get('task')!r}, expected 'detection'")
        scores = {int(s): float(ap) for s, ap in zip(result["seeds"], result["per_seed_box_ap"], strict=True)}
        extras = {"finetune_lr": result["lr"], "finetune_wd": result["wd"], "finetune_steps": result["steps"],
                  "mask_ap_median": result["mask"]["AP"]}
        return TaskResult(scores, result.get("finetune_flops"), result.get("finetune_flops_all_runs"), extras)

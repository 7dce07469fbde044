"""The fine-tuning stage's one adapter into segtransfer: semantic segmentation as a sweep task.

A sweep's segmentation settings are a `segtransfer.SegmentationSpec`, unchanged (``config.tasks.segmentation``
holds its fields; the task's id hashes their canonical JSON, `flopstudy.stages.registry.task_spec`). The task calls
``segtransfer.run_segmentation`` in-process (not ``flopwise-finetune-seg`` in a subprocess): runs of one worker
process then share JAX's compilation caches, and an exception reaches the sweep with its type and message. The
task folder's ``command.txt`` is the ``flopwise-finetune-seg`` command that reruns the task by hand.

The task folder is ``run_study``'s ``out_dir``: ``runs/<lr>-<wd>-<seed>/`` per fine-tuning run and
``result.json`` (written last, atomically) with the chosen (lr, wd), every seed's mIoU and the fine-tuning FLOPs.
With an LR x WD grid, every pair is fine-tuned with the first seed and the best mIoU picks the pair the other
seeds repeat (the study's selection); asking for more seeds later reuses every finished run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from segtransfer import SegmentationSpec, run_segmentation

from ..specs.task_protocol import Preempted, TaskResult
from .dataset_task import DatasetTask

__all__ = ["SegmentationTask"]


class SegmentationTask(DatasetTask):
    kind: ClassVar[str] = "segmentation"
    noun: ClassVar[str] = "segmentation"
    result_name: ClassVar[str] = "segmentation"
    score_metric: ClassVar[str] = "mIoU"
    settings_type: ClassVar[type] = SegmentationSpec
    # eval_batch_size, keep_checkpoints, tensorboard: fields the spec gained from the run's options; none changes
    # a score, and leaving them out keeps every earlier task's id
    how_fields: ClassVar[tuple[str, ...]] = ("seeds", "checkpoint_every", "log_every", "workers", "eval_batch_size",
                                             "keep_checkpoints", "tensorboard")
    later_fields: ClassVar[tuple[str, ...]] = ("sam_rho", "sam_shards", "augment")

    def run(self, settings: SegmentationSpec, *, encoder: str, model: str, out_dir: Path, seeds: Sequence[int],
            data_dir: str | None) -> None:
        result = run_segmentation(settings, encoder=encoder, out_dir=out_dir, model=model, seeds=list(seeds),
                                  data_dir=data_dir, resume=(Path(out_dir) / "runs").is_dir())  # per-run folders
        if result.get("status") == "preempted":
            raise Preempted(f"fine-tuning in {out_dir} was stopped; run the sweep again to resume it")

    def parse_result(self, result: dict[str, Any]) -> TaskResult:
        seeds, per_seed = result["seeds"], result["per_seed_miou"]
        scores = {int(s): 100.0 * float(m) for s, m in zip(seeds, per_seed, strict=True)}
        return TaskResult(scores, result.get("finetune_flops"), result.get("finetune_flops_all_runs"),
                          {"finetune_lr": result.get("lr"), "finetune_wd": result.get("wd"),
                           "finetune_steps": result.get("steps")})

"""The fine-tuning stage's one adapter into segtransfer: semantic segmentation as a sweep task.

Calls ``segtransfer.run_study`` in-process (not ``tools/finetune_seg.py`` in a subprocess): runs of one worker
process then share JAX's compilation caches, and an exception reaches the sweep with its type and message. When
the engine rewrite changes ``run_study``'s signature or ``result.json``'s keys, `SegmentationTask.run` and
`SegmentationTask.read` are the only places to edit.

The task folder is ``run_study``'s ``out_dir``: ``runs/<lr>-<wd>-<seed>/`` per fine-tuning run and
``result.json`` (written last, atomically) with the chosen (lr, wd), every seed's mIoU and the fine-tuning FLOPs.
With an LR x WD grid, every pair is fine-tuned with the first seed and the best mIoU picks the pair the other
seeds repeat (the study's selection); asking for more seeds later reuses every finished run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..sweep.ranges import check_ranges
from ..sweep.tasks import Preempted, TaskResult
from .dataset_task import DatasetTask
from .datasets import resolve_dataset

__all__ = ["SegmentationSettings", "SegmentationTask"]


@dataclasses.dataclass(frozen=True)
class SegmentationSettings:
    """Fine-tuning for semantic segmentation (defaults: the study's ADE20K protocol, DESIGN.md section 5).

    Length: ``steps``, or ``epochs`` of the training split (the study's 80 when neither is given). ``lrs`` x
    ``wds`` is the grid (one pair: no selection). ``seeds``: fine-tuning seeds per point (0, 1, ...).
    ``head_channels``/``norm_groups``: the FCN head's width (scale it down with a tiny backbone). ``sam_rho``:
    sharpness-aware minimisation's radius (None: plain AdamW; `segtransfer.FinetuneConfig.sam_rho`).
    ``photometric``: the training images' colour jitter (``segtransfer.photometric.PHOTOMETRIC``: "byol", the
    study's; "none")."""

    dataset: str = "ade20k"
    steps: int | None = None
    epochs: float | None = None
    batch: int = 16
    image_size: int = 512
    lrs: tuple[float, ...] = (1e-5, 5e-5, 1e-4, 5e-4)
    wds: tuple[float, ...] = (0.1, 0.05, 0.01)
    seeds: int = 5
    head_channels: int = 256
    norm_groups: int = 32
    eval_mode: str = "center_crop"
    warmup: int | None = None
    checkpoint_every: int = 500
    log_every: int = 50
    workers: int = 0
    sam_rho: float | None = None
    photometric: str = "byol"

    def __post_init__(self) -> None:
        if self.steps is not None and self.epochs is not None:
            raise ValueError(f"steps={self.steps} and epochs={self.epochs}: give the length one way only")
        for name in ("batch", "image_size", "seeds", "head_channels", "norm_groups", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r}: expected >= 1")
        if not self.lrs or not self.wds:
            raise ValueError(f"lrs={self.lrs!r}, wds={self.wds!r}: expected at least one value each")
        check_ranges(self, {"steps": ">=1", "epochs": ">0", "lrs": ">0", "wds": ">=0", "warmup": ">=0",
                            "workers": ">=0", "sam_rho": ">0"})
        from segtransfer.photometric import PHOTOMETRIC  # late: loading a sweep stays light until it runs
        from segtransfer.protocol import EVAL_MODES

        if self.photometric not in PHOTOMETRIC:
            raise ValueError(f"photometric={self.photometric!r}: expected one of {', '.join(sorted(PHOTOMETRIC))}")
        if self.eval_mode not in EVAL_MODES:
            raise ValueError(f"eval_mode={self.eval_mode!r}: expected one of {', '.join(EVAL_MODES)}")


class SegmentationTask(DatasetTask):
    kind: ClassVar[str] = "segmentation"
    noun: ClassVar[str] = "segmentation"
    result_name: ClassVar[str] = "segmentation"
    score_metric: ClassVar[str] = "mIoU"
    settings_type: ClassVar[type] = SegmentationSettings
    how_fields: ClassVar[tuple[str, ...]] = ("seeds", "checkpoint_every", "log_every", "workers")
    later_fields: ClassVar[tuple[str, ...]] = ("sam_rho",)

    def check(self, settings: SegmentationSettings, *, data_dir: str | None) -> None:
        from segtransfer import protocol

        if settings.eval_mode not in protocol.EVAL_MODES:
            raise ValueError(f"eval_mode={settings.eval_mode!r}: expected one of {protocol.EVAL_MODES}")
        super().check(settings, data_dir=data_dir)

    def run(self, settings: SegmentationSettings, *, encoder: str, model: str, out_dir: Path, seeds: Sequence[int],
            data_dir: str | None) -> None:
        import segtransfer as st
        from segtransfer import protocol

        info = st.describe_segmentation_dataset(resolve_dataset(settings.dataset, data_dir=data_dir))
        steps = st.finetune_steps(batch_size=settings.batch, dataset_size=info.train_size, steps=settings.steps,
                                  epochs=None if settings.steps else (settings.epochs or protocol.STUDY_EPOCHS))
        base = st.FinetuneConfig(
            dataset_dir=info.directory, num_classes=info.num_classes, steps=steps, batch_size=settings.batch,
            lr=settings.lrs[0], wd=settings.wds[0], image_size=settings.image_size, warmup=settings.warmup,
            eval_mode=settings.eval_mode, eval_split=info.eval_split, head_channels=settings.head_channels,
            norm_groups=settings.norm_groups, checkpoint_every=settings.checkpoint_every,
            log_every=settings.log_every, workers=settings.workers, sam_rho=settings.sam_rho,
            photometric=settings.photometric)
        grid = (st.study_grid(settings.lrs, settings.wds) if len(settings.lrs) * len(settings.wds) > 1 else None)
        result = st.run_study(base, encoder=encoder, out_dir=out_dir, dataset=settings.dataset,
                              model=model, grid=grid, seeds=list(seeds),
                              resume=(Path(out_dir) / "runs").is_dir())  # segtransfer's per-run folders
        if result.get("status") == "preempted":
            raise Preempted(f"fine-tuning in {out_dir} was stopped; run the sweep again to resume it")

    def parse_result(self, result: dict[str, Any]) -> TaskResult:
        seeds, per_seed = result["seeds"], result["per_seed_miou"]
        scores = {int(s): 100.0 * float(m) for s, m in zip(seeds, per_seed, strict=True)}
        return TaskResult(scores, result.get("finetune_flops"), result.get("finetune_flops_all_runs"),
                          {"finetune_lr": result.get("lr"), "finetune_wd": result.get("wd"),
                           "finetune_steps": result.get("steps")})

"""The transfer studies' ``result.json`` records, with the encoder's provenance they carry: `FinetuneResult`
(segmentation, written by `run_study`), `DetectionResult` (detection, written by `detection_study`) and
`EncoderInfo` (where a fine-tuned encoder came from: the report's cost axis). They build on the engine's typed
record (`runloop.Record`): the JSON keys are the dataclass fields, every value is range-checked when a record is
built or read, ``Record.read(path)`` raises ValueError ``"<path> is not a valid <what> (<reason>)"`` and
``record.write(path)`` writes atomically.

Example::

    result = FinetuneResult.read(study_dir / "result.json")
    result.miou, result.encoder.pretrain_flops
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

from runloop import Record
from runloop.records import check_integer, check_number, check_text

__all__ = ["ENCODER_KINDS", "DetectionResult", "EncoderInfo", "FinetuneResult"]

ENCODER_KINDS = ("run", "timm", "scratch")


@dataclasses.dataclass(frozen=True)
class EncoderInfo(Record):
    """Where a fine-tuned encoder came from (the report's cost axis): ``kind`` is ``run`` (a pre-training run
    directory), ``timm`` (a weights file) or ``scratch``; ``pretrain_flops`` is 0 for scratch and None when unknown
    (timm files, runs without a FLOP count)."""

    WHAT: ClassVar[str] = "encoder record"
    kind: str
    path: str | None = None
    method: str | None = None
    model: str | None = None
    pretrain_dataset: str | None = None
    pretrain_steps: int | None = None
    pretrain_flops: float | None = None
    pretrain_kg_co2e: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ENCODER_KINDS:
            raise ValueError(f"kind={self.kind!r}: expected one of {ENCODER_KINDS}")
        for name in ("path", "method", "model", "pretrain_dataset"):
            check_text(name, getattr(self, name), optional=True)
        check_integer("pretrain_steps", self.pretrain_steps, optional=True)
        check_number("pretrain_flops", self.pretrain_flops, low=0, optional=True)
        check_number("pretrain_kg_co2e", self.pretrain_kg_co2e, low=0, optional=True)
        if self.kind == "scratch" and self.pretrain_flops != 0:
            raise ValueError(f"pretrain_flops={self.pretrain_flops!r}; a scratch encoder has 0 pre-training FLOPs")


class _StudyResult(Record):
    """Base of the fine-tuning studies' ``result.json`` records: the checks and conversions of what every study
    reports (its FLOPs, recipe numbers and the encoder's provenance)."""

    def _check_costs_and_recipe(self, counts: tuple[str, ...]) -> None:
        """The FLOP fields (null or >= 0), ``counts`` (integers >= 1), ``warmup_steps``, ``lr``, ``wd`` and
        ``encoder`` (an `EncoderInfo`)."""
        for name in ("finetune_flops", "finetune_flops_per_step", "finetune_flops_all_runs", "finetune_macs_per_step"):
            check_number(name, getattr(self, name), low=0, optional=True)
        for name in counts:
            check_integer(name, getattr(self, name), low=1)
        check_integer("warmup_steps", self.warmup_steps)
        check_number("lr", self.lr, low=0)
        check_number("wd", self.wd, low=0)
        if not isinstance(self.encoder, EncoderInfo):
            raise ValueError(f"encoder={self.encoder!r}; expected an EncoderInfo")

    @classmethod
    def _convert(cls, data: dict[str, Any]) -> dict[str, Any]:
        data = super()._convert(data)
        if isinstance(data.get("encoder"), dict):
            data["encoder"] = EncoderInfo.from_json(data["encoder"])
        return data


@dataclasses.dataclass(frozen=True)
class FinetuneResult(_StudyResult):
    """``result.json`` of a fine-tuning study: the headline ``miou``/``aacc`` (fractions, medians over seeds),
    per-class ``iou`` (null for classes absent from the split), the fine-tuning FLOPs and the encoder's
    provenance. ``grid`` holds the LR x WD search (``{"lr", "wd", "miou"}`` per pair) when one was run."""

    WHAT: ClassVar[str] = "fine-tuning result"
    dataset: str
    miou: float
    aacc: float
    iou: list[float | None]
    finetune_flops: float | None
    finetune_flops_per_step: float | None
    finetune_flops_all_runs: float | None
    finetune_macs_per_step: float | None
    steps: int
    warmup_steps: int
    batch_size: int
    image_size: int
    lr: float
    wd: float
    seeds: list[int]
    per_seed_miou: list[float]
    eval_mode: str
    eval_split: str
    num_classes: int
    encoder: EncoderInfo
    finetune_flops_source: str = "compiled step"
    grid: list[dict[str, float]] | None = None

    def __post_init__(self) -> None:
        for name in ("dataset", "eval_mode", "eval_split", "finetune_flops_source"):
            check_text(name, getattr(self, name))
        for name in ("miou", "aacc"):
            check_number(name, getattr(self, name), low=0, high=1)
        for i, value in enumerate(self.iou):
            check_number(f"iou[{i}]", value, low=0, high=1, optional=True)
        for i, value in enumerate(self.per_seed_miou):
            check_number(f"per_seed_miou[{i}]", value, low=0, high=1)
        self._check_costs_and_recipe(("steps", "batch_size", "image_size", "num_classes"))
        if not self.seeds or len(self.seeds) != len(self.per_seed_miou):
            raise ValueError(f"seeds={self.seeds!r} and per_seed_miou={self.per_seed_miou!r}; expected one mIoU per "
                             "seed, at least one seed")

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        if self.grid is None:
            del out["grid"]  # the key exists only when a grid was searched
        return out


@dataclasses.dataclass(frozen=True)
class DetectionResult(_StudyResult):
    """``result.json`` of a detection fine-tuning study (Mask R-CNN, pycocotools over every image of
    ``eval_split``). The headline ``score`` is box AP@[.5:.95] in percent, the median over seeds; ``box`` and
    ``mask`` hold the medians of each COCO number (``AP``, ``AP50``, ``AP75``, ``APs``, ``APm``, ``APl``; null
    when the split has no object of that size), ``per_seed_*`` each seed's AP. ``task`` and ``score_metric`` are
    fixed so that readers of the bare JSON (the results table) can tell it from a segmentation result."""

    WHAT: ClassVar[str] = "detection result"
    dataset: str
    score: float
    box: dict[str, float | None]
    mask: dict[str, float | None]
    seeds: list[int]
    per_seed_box_ap: list[float]
    per_seed_mask_ap: list[float]
    finetune_flops: float | None
    finetune_flops_per_step: float | None
    finetune_flops_all_runs: float | None
    finetune_macs_per_step: float | None
    steps: int
    warmup_steps: int
    batch_size: int
    image_size: int
    lr: float
    wd: float
    layer_decay: float | None
    num_classes: int
    eval_split: str
    num_eval_images: int
    encoder: EncoderInfo
    finetune_flops_source: str = "compiled step"
    task: str = "detection"
    score_metric: str = "box AP"

    def __post_init__(self) -> None:
        for name in ("dataset", "eval_split", "finetune_flops_source"):
            check_text(name, getattr(self, name))
        if (self.task, self.score_metric) != ("detection", "box AP"):
            raise ValueError(f"task={self.task!r}, score_metric={self.score_metric!r}; expected 'detection', 'box AP'")
        check_number("score", self.score, low=0, high=100)
        for which in ("box", "mask"):
            values = getattr(self, which)
            if not isinstance(values, dict) or "AP" not in values:
                raise ValueError(f"{which}={values!r}; expected an object with 'AP' (and AP50, AP75, APs, APm, APl)")
            for name, value in values.items():
                check_number(f"{which}.{name}", value, low=0, high=100, optional=True)
        for name in ("per_seed_box_ap", "per_seed_mask_ap"):
            values = getattr(self, name)
            if len(values) != len(self.seeds):
                raise ValueError(f"{name}={values!r} and seeds={self.seeds!r}; expected one AP per seed")
            for i, value in enumerate(values):
                check_number(f"{name}[{i}]", value, low=0, high=100)
        if not self.seeds:
            raise ValueError("seeds=[]; expected at least one seed")
        if not math.isclose(self.score, self.box["AP"] or 0.0, abs_tol=1e-9):
            raise ValueError(f"score={self.score!r}; expected box.AP={self.box['AP']!r} (the headline is box AP)")
        self._check_costs_and_recipe(("steps", "batch_size", "image_size", "num_classes", "num_eval_images"))
        check_number("layer_decay", self.layer_decay, low=0, high=1, optional=True)

    @classmethod
    def _convert(cls, data: dict[str, Any]) -> dict[str, Any]:
        data = super()._convert(data)
        for which in ("box", "mask"):  # whole-number APs come back from JSON as ints
            if isinstance(data.get(which), dict):
                data[which] = {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                               for k, v in data[which].items()}
        for name in ("per_seed_box_ap", "per_seed_mask_ap"):
            if isinstance(data.get(name), list):
                data[name] = [float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in data[name]]
        return data

"""Typed run records: what a pre-training run leaves (``summary.json``) and what a fine-tuning study reports
(``result.json``: `FinetuneResult` for segmentation, `DetectionResult` for detection), with the encoder's
provenance. Readers (segtransfer, the report, the study layer) go through
these classes instead of string keys, and every value is range-checked when a record is built or read, so a
damaged or hand-edited file is an error naming the file, not a silently wrong point on a plot.

The JSON keys are the dataclass fields. ``Record.read(path)`` raises ValueError ``"<path> is not a valid <what>
(<reason>)"``; ``record.write(path)`` writes atomically.

Example::

    summary = PretrainSummary.read(run_dir / "summary.json")
    summary.total_flops
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from pathlib import Path
from typing import Any, ClassVar

from .atomic_files import write_json_atomic
from .jsonable import to_jsonable

__all__ = ["ENCODER_KINDS", "DetectionResult", "EncoderInfo", "FinetuneResult", "PretrainSummary", "Record"]

ENCODER_KINDS = ("run", "timm", "scratch")
RUN_STATUSES = ("completed", "preempted")


def _number(name: str, value: Any, *, low: int | float | None = None, high: int | float | None = None,
            optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r}; expected a finite number{' or null' if optional else ''}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name}={value!r}; expected a value in [{low}, {high if high is not None else 'inf'}]")


def _integer(name: str, value: Any, *, low: int = 0, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}={value!r}; expected an integer >= {low}")


def _text(name: str, value: Any, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise ValueError(f"{name}={value!r}; expected a string")


class Record:
    """Base of the run records: JSON round trip, reading and writing files."""

    WHAT: ClassVar[str] = "record"

    def to_json(self) -> dict[str, Any]:
        return to_jsonable(dataclasses.asdict(self), self.WHAT)

    @classmethod
    def from_json(cls, data: Any) -> Any:
        """Builds and validates the record; ValueError naming missing, unknown or out-of-range fields."""
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, found {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        required = [n for n, f in fields.items()
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        missing = [n for n in required if n not in data]
        unknown = sorted(set(data) - set(fields))
        if missing or unknown:
            raise ValueError(f"missing fields {missing}, unknown fields {unknown}")
        return cls(**cls._convert(dict(data)))

    @classmethod
    def _convert(cls, data: dict[str, Any]) -> dict[str, Any]:
        hints = typing.get_type_hints(cls)
        for name, value in data.items():  # JSON has no int/float distinction for whole numbers
            if "float" in str(hints[name]) and isinstance(value, int) and not isinstance(value, bool):
                data[name] = float(value)
        return data

    @classmethod
    def read(cls, path: str | Path) -> Any:
        path = Path(path)
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (ValueError, TypeError) as error:  # JSONDecodeError is a ValueError
            raise ValueError(f"{path} is not a valid {cls.WHAT} ({error})") from None

    def write(self, path: str | Path) -> Path:
        return write_json_atomic(path, self.to_json())


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
            _text(name, getattr(self, name), optional=True)
        _integer("pretrain_steps", self.pretrain_steps, optional=True)
        _number("pretrain_flops", self.pretrain_flops, low=0, optional=True)
        _number("pretrain_kg_co2e", self.pretrain_kg_co2e, low=0, optional=True)
        if self.kind == "scratch" and self.pretrain_flops != 0:
            raise ValueError(f"pretrain_flops={self.pretrain_flops!r}; a scratch encoder has 0 pre-training FLOPs")


@dataclasses.dataclass(frozen=True)
class PretrainSummary(Record):
    """``summary.json`` of a pre-training run. ``total_flops = flops_per_step * steps`` (both None when the step
    was not measured); ``knn`` lists the monitor's ``{"step", "knn_top1"}`` records."""

    WHAT: ClassVar[str] = "pre-training summary"
    method: str
    model: str | None
    dataset: str | None
    status: str
    steps: int
    batch_size: int
    flops_per_step: float | None
    total_flops: float | None
    flops_source: str = "not measured"
    devices: int = 1
    device_kind: str | None = None
    wall_seconds: float = 0.0
    images_per_second: float | None = None
    energy_kwh: float | None = None
    kg_co2e: float | None = None
    co2_watts_per_device: float | None = None
    co2_region: str | None = None
    final_metrics: dict[str, float | None] = dataclasses.field(default_factory=dict)
    skipped_steps: int = 0
    knn: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    finished_at: str | None = None

    def __post_init__(self) -> None:
        _text("method", self.method)
        for name in ("model", "dataset", "device_kind", "co2_region", "finished_at"):
            _text(name, getattr(self, name), optional=True)
        if self.status not in RUN_STATUSES:
            raise ValueError(f"status={self.status!r}; expected one of {RUN_STATUSES}")
        _integer("steps", self.steps)
        _integer("batch_size", self.batch_size, low=1)
        _integer("devices", self.devices, low=1)
        _integer("skipped_steps", self.skipped_steps)
        for name in ("flops_per_step", "total_flops", "images_per_second", "energy_kwh", "kg_co2e",
                     "co2_watts_per_device"):
            _number(name, getattr(self, name), low=0, optional=True)
        _number("wall_seconds", self.wall_seconds, low=0)
        if (self.flops_per_step is None) != (self.total_flops is None) or (
                self.total_flops is not None and not math.isclose(self.total_flops, self.flops_per_step * self.steps,
                                                                  rel_tol=1e-9)):
            raise ValueError(f"total_flops={self.total_flops!r}; expected flops_per_step x steps = "
                             f"{self.flops_per_step!r} x {self.steps}")
        for record in self.knn:
            _integer("knn[].step", record.get("step") if isinstance(record, dict) else None)
            _number("knn[].knn_top1", record.get("knn_top1"), low=0, high=1, optional=True)


class _StudyResult(Record):
    """Base of the fine-tuning studies' ``result.json`` records: the checks and conversions of what every study
    reports (its FLOPs, recipe numbers and the encoder's provenance)."""

    def _check_costs_and_recipe(self, counts: tuple[str, ...]) -> None:
        """The FLOP fields (null or >= 0), ``counts`` (integers >= 1), ``warmup_steps``, ``lr``, ``wd`` and
        ``encoder`` (an `EncoderInfo`)."""
        for name in ("finetune_flops", "finetune_flops_per_step", "finetune_flops_all_runs", "finetune_macs_per_step"):
            _number(name, getattr(self, name), low=0, optional=True)
        for name in counts:
            _integer(name, getattr(self, name), low=1)
        _integer("warmup_steps", self.warmup_steps)
        _number("lr", self.lr, low=0)
        _number("wd", self.wd, low=0)
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
            _text(name, getattr(self, name))
        for name in ("miou", "aacc"):
            _number(name, getattr(self, name), low=0, high=1)
        for i, value in enumerate(self.iou):
            _number(f"iou[{i}]", value, low=0, high=1, optional=True)
        for i, value in enumerate(self.per_seed_miou):
            _number(f"per_seed_miou[{i}]", value, low=0, high=1)
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
            _text(name, getattr(self, name))
        if (self.task, self.score_metric) != ("detection", "box AP"):
            raise ValueError(f"task={self.task!r}, score_metric={self.score_metric!r}; expected 'detection', 'box AP'")
        _number("score", self.score, low=0, high=100)
        for which in ("box", "mask"):
            values = getattr(self, which)
            if not isinstance(values, dict) or "AP" not in values:
                raise ValueError(f"{which}={values!r}; expected an object with 'AP' (and AP50, AP75, APs, APm, APl)")
            for name, value in values.items():
                _number(f"{which}.{name}", value, low=0, high=100, optional=True)
        for name in ("per_seed_box_ap", "per_seed_mask_ap"):
            values = getattr(self, name)
            if len(values) != len(self.seeds):
                raise ValueError(f"{name}={values!r} and seeds={self.seeds!r}; expected one AP per seed")
            for i, value in enumerate(values):
                _number(f"{name}[{i}]", value, low=0, high=100)
        if not self.seeds:
            raise ValueError("seeds=[]; expected at least one seed")
        if not math.isclose(self.score, self.box["AP"] or 0.0, abs_tol=1e-9):
            raise ValueError(f"score={self.score!r}; expected box.AP={self.box['AP']!r} (the headline is box AP)")
        self._check_costs_and_recipe(("steps", "batch_size", "image_size", "num_classes", "num_eval_images"))
        _number("layer_decay", self.layer_decay, low=0, high=1, optional=True)

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

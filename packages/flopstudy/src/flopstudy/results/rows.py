"""The results table: one row per (pre-training run, downstream task, fine-tuning seed), typed and validated.

The contract of docs/design.md (section 2) fixes the first ten columns; the rest are optional (empty = not measured).
`COLUMNS` is the single description of every column: its name, type, whether the contract requires it, the
range a value must lie in, and what it means. `ResultRow.from_record` turns one CSV/JSONL record into a row or
raises ``ValueError`` naming the column, its value and what was expected.

Conventions: ``pretrain_flops`` empty = unknown, 0 = trained from scratch; ``score`` is the task's headline
metric in % (mIoU for segmentation, box AP for detection); FLOPs are whole-program counts (XLA convention,
2 per multiply-add, all devices together) unless the column says ``per_device``. Columns the schema does not
know (e.g. a task's extra metrics) are kept in ``extras`` under their own names.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = ["COLUMNS", "REQUIRED_COLUMNS", "SCORE_RANGE", "SCRATCH_METHOD", "SEED_ROLES", "STATUS_DONE", "Column",
           "CurveKey", "ResultRow"]

STATUS_DONE = "done"
SCRATCH_METHOD = "scratch"  # the method of a from-scratch row (and of a sweep's scratch runs)
# A fine-tuning seed used to choose points, or one run only to test a chosen point (docs/statistics.md).
SEED_ROLES = ("explore", "confirm")


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of the results table. ``kind`` is "str", "int" or "float"; ``low``/``high`` bound numbers."""

    name: str
    kind: str
    required: bool
    doc: str
    low: float | int | None = None
    high: float | int | None = None
    nullable: bool = True
    empty: Any = None  # what an empty cell (or a table without the column) loads as


COLUMNS: tuple[Column, ...] = (
    # The contract (docs/design.md section 2).
    Column("method", "str", True, "pre-training method (registry name or import path; 'scratch' for none)",
           nullable=False),
    Column("variant", "str", True, "method variant, e.g. 'mask0.75-d8' ('' = the method's defaults)"),
    Column("backbone", "str", True, "backbone preset, e.g. 'vit-b16'", nullable=False),
    Column("pretrain_dataset", "str", True, "pre-training dataset ('' for scratch)"),
    Column("pretrain_steps", "int", True, "pre-training steps (empty = unknown, 0 = scratch)", low=0),
    Column("pretrain_flops", "float", True, "total pre-training FLOPs, whole program (empty = unknown, 0 = scratch)",
           low=0),
    Column("task", "str", True, "downstream task, e.g. 'fmnist_scenes segmentation'", nullable=False),
    Column("seed", "int", True, "fine-tuning seed", nullable=False),
    Column("score", "float", True, "the task's headline metric in % (empty unless status is 'done')", low=0,
           high=100),
    Column("status", "str", True, "'done', or why not ('failed', 'running', 'pending', ...)", nullable=False),
    # Optional (issue 14's table).
    Column("score_metric", "str", False, "name of the headline metric, e.g. 'mIoU', 'box AP'"),
    Column("flops_per_step", "float", False, "pre-training FLOPs per step, whole program", low=0),
    Column("flops_per_step_per_device", "float", False, "pre-training FLOPs per step on one device", low=0),
    Column("num_devices", "int", False, "devices the pre-training step ran on", low=1),
    Column("pretrain_batch", "int", False, "pre-training batch size (images per step)", low=1),
    Column("params", "int", False, "backbone parameter count", low=1),
    Column("finetune_flops", "float", False, "FLOPs of one fine-tuning run (whole program)", low=0),
    Column("pretrain_seconds", "float", False, "pre-training wall time in seconds", low=0),
    Column("finetune_seconds", "float", False, "fine-tuning wall time in seconds", low=0),
    Column("hardware", "str", False, "where the wall times were measured (a flopmeter hardware-table name, e.g. "
           "'tpu-v3', lets the planner fit steps/s on it)"),
    Column("mfu", "float", False, "measured model FLOP utilisation of pre-training (0-1)", low=0, high=1),
    Column("study_hours", "float", False, "pre-training hours on the study's reference hardware (CO2 model)", low=0),
    Column("study_kwh", "float", False, "pre-training energy from the study's CO2 model, kWh", low=0),
    Column("study_kg_co2e", "float", False, "pre-training emissions from the study's CO2 model, kgCO2e", low=0),
    Column("local_kwh", "float", False, "pre-training energy measured or estimated locally, kWh", low=0),
    Column("local_kg_co2e", "float", False, "pre-training emissions estimated locally, kgCO2e", low=0),
    Column("upstream_loss", "float", False, "final pre-training loss on the fixed held-out set (older runs: the "
           "last training batch's; see upstream_loss_source)"),
    Column("upstream_loss_source", "str", False, "'heldout' or 'last batch' (a run that recorded no held-out loss; "
           "empty in older tables: not recorded)"),
    Column("upstream_accuracy", "float", False, "upstream accuracy in % on held-out pre-training data (the "
           "method's held-out top-1 where it has one, else the kNN monitor's); upstream error = 100 - this", low=0,
           high=100),
    Column("upstream_accuracy_source", "str", False, "'heldout' (the method's own held-out accuracy) or 'knn'"),
    Column("prepretrain_method", "str", False, "first stage of a two-stage run (MAE pre-pretraining), e.g. 'mae' "
           "(empty: none)"),
    Column("prepretrain_steps", "int", False, "steps of the first stage", low=0),
    Column("prepretrain_flops", "float", False, "FLOPs of the first stage, whole program (included in "
           "pretrain_flops)", low=0),
    Column("seed_role", "str", False, "'explore' (a seed used to choose points) or 'confirm' (a seed run only to "
           "test a chosen point; every scratch seed); empty in tables from before seed roles: scratch rows count "
           "as 'confirm', the others as 'explore'"),
    Column("pretrain_seed", "int", False, "which pre-training run of its point the encoder is: 0 = the sweep's "
           "own, k = its k-th repeat (config.pretrain_seeds; pre-trained with the sweep's seed + k); 0 for scratch "
           "and in tables from before repeats", low=0, empty=0),
    Column("run_dir", "str", False, "the run directory the row was built from"),
    Column("error", "str", False, "why the run failed (status 'failed')"),
)
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.required)
_BY_NAME = {c.name: c for c in COLUMNS}
SCORE_RANGE: tuple[float, float] = (_BY_NAME["score"].low, _BY_NAME["score"].high)  # a score is a % in here


class CurveKey(NamedTuple):
    """What one accuracy-vs-FLOPs curve holds fixed."""

    method: str
    variant: str
    backbone: str
    pretrain_dataset: str
    task: str

    @property
    def label(self) -> str:
        """"method" or "method (variant)": one colour per label in the figures."""
        return f"{self.method} ({self.variant})" if self.variant else self.method

    @property
    def name(self) -> str:
        """Every field, for messages and tables."""
        return f"{self.label} {self.backbone} on {self.pretrain_dataset or '-'} -> {self.task}"


_EXPECTED = {"str": "text", "int": "an integer", "float": "a number"}


def _parse(column: Column, value: Any) -> Any:
    """A CSV string or JSON value of ``column`` as its Python type; ValueError on a wrong type or range."""
    expected = _EXPECTED[column.kind]
    if value is None or (isinstance(value, str) and not value.strip() and column.kind != "str"):
        if not column.nullable:
            raise ValueError(f"{column.name} is empty: expected {expected}")
        return None
    if isinstance(value, float) and math.isnan(value) and column.kind != "float":
        return None  # pandas writes a missing int or str as NaN
    if column.kind == "str":
        text = "" if isinstance(value, float) and math.isnan(value) else str(value).strip()
        if not text and not column.nullable:
            raise ValueError(f"{column.name} is empty: expected a non-empty string")
        return text if text or column.required else None  # an optional text column's empty cell: unknown
    if isinstance(value, bool):
        raise ValueError(f"{column.name}={value!r}: expected {expected}, not a boolean")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{column.name}={value!r}: expected {expected}") from None
    if math.isnan(number):
        if not column.nullable:
            raise ValueError(f"{column.name}={value!r}: expected {expected}")
        return None
    if not math.isfinite(number):
        raise ValueError(f"{column.name}={value!r}: expected a finite number")
    if column.low is not None and number < column.low or column.high is not None and number > column.high:
        bounds = f"{column.low:g}-{column.high:g}" if column.high is not None else f">= {column.low:g}"
        raise ValueError(f"{column.name}={value!r} is out of range: expected {bounds}")
    if column.kind == "int":
        if number != int(number):
            raise ValueError(f"{column.name}={value!r}: expected an integer")
        return int(number)
    return number


@dataclasses.dataclass(frozen=True)
class ResultRow:
    """One validated row; field names and meanings are `COLUMNS`. Build with `from_record`."""

    method: str
    variant: str
    backbone: str
    pretrain_dataset: str
    pretrain_steps: int | None
    pretrain_flops: float | None
    task: str
    seed: int
    score: float | None
    status: str
    score_metric: str | None = None
    flops_per_step: float | None = None
    flops_per_step_per_device: float | None = None
    num_devices: int | None = None
    pretrain_batch: int | None = None
    params: int | None = None
    finetune_flops: float | None = None
    pretrain_seconds: float | None = None
    finetune_seconds: float | None = None
    hardware: str | None = None
    mfu: float | None = None
    study_hours: float | None = None
    study_kwh: float | None = None
    study_kg_co2e: float | None = None
    local_kwh: float | None = None
    local_kg_co2e: float | None = None
    upstream_loss: float | None = None
    upstream_loss_source: str | None = None
    upstream_accuracy: float | None = None
    upstream_accuracy_source: str | None = None
    prepretrain_method: str | None = None
    prepretrain_steps: int | None = None
    prepretrain_flops: float | None = None
    seed_role: str | None = None
    pretrain_seed: int = 0
    run_dir: str | None = None
    error: str | None = None
    extras: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.status == STATUS_DONE and self.score is None:
            raise ValueError("score is empty but status is 'done': a finished row needs its score")
        if self.pretrain_flops == 0 and self.pretrain_steps not in (0, None):
            raise ValueError(f"pretrain_flops=0 (scratch) but pretrain_steps={self.pretrain_steps}: expected 0")
        if self.seed_role is not None and self.seed_role not in SEED_ROLES:
            raise ValueError(f"seed_role={self.seed_role!r}: expected one of {', '.join(SEED_ROLES)} (or empty)")

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ResultRow:
        """A row from a mapping of column name -> value (CSV strings or JSON values). Raises ValueError naming
        the first missing required column or bad value. Unknown columns go to ``extras`` (numbers as float)."""
        missing = [name for name in REQUIRED_COLUMNS if name not in record]
        if missing:
            raise ValueError(f"missing required column(s) {missing}; the contract needs {list(REQUIRED_COLUMNS)}")
        fields = {name: _or_empty(_parse(column, record.get(name)), column) for name, column in _BY_NAME.items()}
        extras = {str(k): _extra(v) for k, v in record.items() if k not in _BY_NAME and _extra(v) is not None}
        return cls(**fields, extras=extras)

    def to_record(self) -> dict[str, Any]:
        """Column name -> value (None for empty), schema columns first, then ``extras``."""
        record = {c.name: getattr(self, c.name) for c in COLUMNS}
        return record | {k: v for k, v in self.extras.items() if k not in record}

    @property
    def done(self) -> bool:
        return self.status == STATUS_DONE

    @property
    def is_scratch(self) -> bool:
        """Trained from scratch: method ``"scratch"`` and no pre-training (``pretrain_flops == 0``). A pre-trained
        method at 0 FLOPs is not a baseline (the analysis leaves it out, saying why)."""
        return self.pretrain_flops == 0 and self.method == SCRATCH_METHOD

    @property
    def role(self) -> str:
        """The seed's role: ``seed_role``, else (a table from before seed roles) 'confirm' for scratch and
        'explore' otherwise, so such a table's pre-trained seeds, which chose the points, never enter a verdict."""
        if self.seed_role is not None:
            return self.seed_role
        return "confirm" if self.is_scratch else "explore"

    @property
    def curve_key(self) -> CurveKey:
        return CurveKey(self.method, self.variant, self.backbone, self.pretrain_dataset, self.task)

    @property
    def step_flops(self) -> float | None:
        """Whole-program FLOPs per pre-training step: the column, else total / steps, else None."""
        if self.flops_per_step is not None:
            return self.flops_per_step
        if self.pretrain_flops and self.pretrain_steps:
            return self.pretrain_flops / self.pretrain_steps
        return None

    def describe(self) -> str:
        """The row in words, for messages: curve, steps, seed and run directory."""
        steps = "?" if self.pretrain_steps is None else self.pretrain_steps
        where = f" ({self.run_dir})" if self.run_dir else ""
        again = f", pre-training seed {self.pretrain_seed}" if self.pretrain_seed else ""
        return f"{self.curve_key.name}, {steps} steps{again}, seed {self.seed}{where}"


def _or_empty(value: Any, column: Column) -> Any:
    """``value``, or the column's value for an empty cell."""
    return column.empty if value is None else value


def _extra(value: Any) -> Any:
    """An unknown column's value: numbers as float, other text as str, empty as None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool | int | float):
        return value
    text = str(value).strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text

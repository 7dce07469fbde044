"""Typed run records: the base every record of a run directory builds on (`Record`: JSON round trip with the
dataclass fields as keys, validation, atomic writes) with its field checks, and the one record that crosses
packages, ``summary.json`` of a pre-training run (`PretrainSummary`). Pre-training (sslmethods) writes it; the
transfer package and the study layer read it for the encoder's provenance and cost. Those two never import each
other, so the summary lives here, in the engine they share (docs/design.md section 1). The transfer studies'
own ``result.json`` records live in the package that runs them (`segtransfer.records`).

Every value is range-checked when a record is built or read, so a damaged or hand-edited file is an error naming
the file, not a silently wrong point on a plot. ``Record.read(path)`` raises ValueError ``"<path> is not a valid
<what> (<reason>)"``; ``record.write(path)`` writes atomically.

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

__all__ = ["PretrainSummary", "Record", "check_integer", "check_number", "check_text"]

RUN_STATUSES = ("completed", "preempted")


def check_number(name: str, value: Any, *, low: int | float | None = None, high: int | float | None = None,
            optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r}; expected a finite number{' or null' if optional else ''}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name}={value!r}; expected a value in [{low}, {high if high is not None else 'inf'}]")


def check_integer(name: str, value: Any, *, low: int = 0, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}={value!r}; expected an integer >= {low}")


def check_text(name: str, value: Any, *, optional: bool = False) -> None:
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
        check_text("method", self.method)
        for name in ("model", "dataset", "device_kind", "co2_region", "finished_at"):
            check_text(name, getattr(self, name), optional=True)
        if self.status not in RUN_STATUSES:
            raise ValueError(f"status={self.status!r}; expected one of {RUN_STATUSES}")
        check_integer("steps", self.steps)
        check_integer("batch_size", self.batch_size, low=1)
        check_integer("devices", self.devices, low=1)
        check_integer("skipped_steps", self.skipped_steps)
        for name in ("flops_per_step", "total_flops", "images_per_second", "energy_kwh", "kg_co2e",
                     "co2_watts_per_device"):
            check_number(name, getattr(self, name), low=0, optional=True)
        check_number("wall_seconds", self.wall_seconds, low=0)
        if (self.flops_per_step is None) != (self.total_flops is None) or (
                self.total_flops is not None and not math.isclose(self.total_flops, self.flops_per_step * self.steps,
                                                                  rel_tol=1e-9)):
            raise ValueError(f"total_flops={self.total_flops!r}; expected flops_per_step x steps = "
                             f"{self.flops_per_step!r} x {self.steps}")
        for record in self.knn:
            check_integer("knn[].step", record.get("step") if isinstance(record, dict) else None)
            check_number("knn[].knn_top1", record.get("knn_top1"), low=0, high=1, optional=True)

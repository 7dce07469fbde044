"""What defines one pre-training run and one fine-tuning task of a sweep, and their stable names.

A `RunSpec` is every setting that changes what a pre-training run computes (method, variant overrides, backbone,
dataset, budget, batch, preset, image size, seed, kNN monitor sizes); settings that only change how it runs
(logging and checkpoint cadence, decoding workers) are left out, so changing them never starts a run again. Its
``run_id`` is a readable slug plus the first 12 hex digits of the SHA-256 of its canonical JSON (sorted keys,
no whitespace, integers for step budgets, floats for FLOP budgets), stable across processes, machines and
Python versions. A `TaskSpec` is the same for a fine-tuning task (kind + its result-changing settings; the seed
count is not part of it, so asking for more seeds reuses the finished ones).

Scratch baselines are runs too: ``method="scratch"``, no dataset, budget 0. The second stage of a chain (MAE
pre-pretraining) holds its first stage's spec in ``init``; a run without one hashes as before the field existed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from ..results.rows import SCRATCH_METHOD as SCRATCH

__all__ = ["SCRATCH", "SPEC_VERSION", "RunSpec", "TaskSpec", "spec_hash"]

SPEC_VERSION = 1  # part of every hash: a change of meaning gets a new version, never a silent reuse
BUDGET_UNITS = ("steps", "flops")


def spec_hash(obj: Mapping[str, Any]) -> str:
    """First 12 hex digits of SHA-256 over ``obj``'s canonical JSON (sorted keys, compact, no NaN)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _slug(*parts: str) -> str:
    text = "-".join(p for p in parts if p)
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_")[:80]


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One pre-training run (or a scratch baseline). ``variant`` is the label of the variant's overrides ('' =
    the method's defaults); ``overrides`` are every ``section.field=value`` applied (the method's common ones and
    the variant's), canonical and sorted. ``budget`` is in ``budget_unit``: steps at ``batch``, or total FLOPs
    (converted to steps with the measured FLOPs per step). ``init``: the first stage of a two-stage run (its
    own run of the sweep), whose encoder this run starts from; None for an ordinary run."""

    method: str
    variant: str
    backbone: str
    dataset: str
    budget: int | float
    budget_unit: str
    batch: int
    preset: str
    image_size: int | None
    seed: int
    overrides: tuple[str, ...] = ()
    knn_bank: int = 1000
    knn_query: int = 500
    init: RunSpec | None = None

    def __post_init__(self) -> None:
        if self.budget_unit not in BUDGET_UNITS:
            raise ValueError(f"budget_unit={self.budget_unit!r}; expected one of {BUDGET_UNITS}")
        if self.is_scratch:
            if self.budget != 0 or self.dataset or self.variant or self.overrides or self.init is not None:
                raise ValueError("a scratch run has budget 0 and no dataset, variant, overrides or first stage")
            return
        if self.budget_unit == "steps":
            if isinstance(self.budget, bool) or float(self.budget) != int(self.budget) or self.budget < 1:
                raise ValueError(f"budget={self.budget!r} steps; expected a whole number >= 1")
            object.__setattr__(self, "budget", int(self.budget))  # 300 and 300.0 are the same run
        else:
            if not float(self.budget) > 0:
                raise ValueError(f"budget={self.budget!r} FLOPs; expected > 0")
            object.__setattr__(self, "budget", float(self.budget))
        object.__setattr__(self, "overrides", tuple(sorted(self.overrides)))
        if self.init is not None and (self.init.is_scratch or self.init.init is not None
                                      or (self.init.backbone, self.init.dataset) != (self.backbone, self.dataset)):
            raise ValueError(f"init={self.init.describe()}: a first stage is a pre-training run (itself without a "
                             f"first stage) on the same backbone and dataset ({self.backbone}, {self.dataset})")

    @classmethod
    def scratch(cls, backbone: str, *, image_size: int | None = None) -> RunSpec:
        """The from-scratch baseline of ``backbone``: no pre-training, 0 FLOPs."""
        return cls(SCRATCH, "", backbone, "", 0, "steps", 0, "", image_size, 0, (), 0, 0)

    @property
    def is_scratch(self) -> bool:
        return self.method == SCRATCH

    def to_json(self) -> dict[str, Any]:
        out = {"version": SPEC_VERSION, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)},
               "overrides": list(self.overrides)}
        if self.init is None:
            del out["init"]  # runs without a first stage keep the hash they had before the field existed
        else:
            out["init"] = self.init.to_json()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSpec:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields - {"version"})
        if data.get("version") != SPEC_VERSION or unknown:
            raise ValueError(f"not a version-{SPEC_VERSION} run spec (version {data.get('version')!r}, unknown "
                             f"keys {unknown})")
        values = {k: (tuple(v) if k == "overrides" else v) for k, v in data.items() if k in fields}
        if values.get("init") is not None:
            values["init"] = cls.from_json(values["init"])
        return cls(**values)

    @property
    def run_id(self) -> str:
        """``<method>-<backbone>-<dataset>-<budget>-<hash>``: the run directory's name."""
        method = self.method.rpartition(":")[2] or self.method
        budget = "" if self.is_scratch else self._budget_text()
        after = "" if self.init is None else f"after-{self.init.method.rpartition(':')[2]}{self.init._budget_text()}"
        return f"{_slug(method, self.backbone, self.dataset, budget, after)}-{spec_hash(self.to_json())}"

    def _budget_text(self) -> str:
        return f"{self.budget}s" if self.budget_unit == "steps" else f"{self.budget:.3g}F"

    def describe(self) -> str:
        if self.is_scratch:
            return f"scratch {self.backbone}"
        unit = "steps" if self.budget_unit == "steps" else "FLOPs"
        variant = f" ({self.variant})" if self.variant else ""
        after = "" if self.init is None else f", after {self.init.method} for {self.init.budget:g} {unit}"
        return f"{self.method}{variant} {self.backbone} on {self.dataset}, {self.budget:g} {unit}{after}"


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One downstream task: its registry ``kind`` (e.g. "segmentation"), the table's ``label`` (e.g.
    "fmnist_scenes segmentation") and ``settings``, the task's settings that change its result."""

    kind: str
    label: str
    settings: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"version": SPEC_VERSION, "kind": self.kind, "label": self.label, "settings": dict(self.settings)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskSpec:
        if data.get("version") != SPEC_VERSION or set(data) != {"version", "kind", "label", "settings"}:
            raise ValueError(f"not a version-{SPEC_VERSION} task spec (keys {sorted(data)})")
        return cls(data["kind"], data["label"], data["settings"])

    @property
    def task_id(self) -> str:
        return f"{_slug(self.label)}-{spec_hash(self.to_json())}"

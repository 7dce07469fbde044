"""What defines one pre-training run and one fine-tuning task of a sweep, and their stable names.

A `RunSpec` is a run's `sslmethods.PretrainSpec` (method, backbone, dataset, length in steps or as a FLOP budget,
batch, preset, typed overrides, image size, seed, kNN monitor sizes: every setting that changes what the run
computes), the table's ``variant`` label and, for the second stage of a chain (MAE pre-pretraining), its first
stage's spec in ``init``. The spec's how-to-run fields (`sslmethods.pretrain.spec.HOW_FIELDS`: logging and
checkpoint cadence, decoding workers, ...) stay at their defaults here and are not part of the identity: the
sweep's ``config.pretrain`` sets them when the run trains, so changing them never starts a run again.

Its ``run_id`` is a readable slug plus the first 12 hex digits of the SHA-256 of its canonical JSON (`to_json`:
the flat record ``method, variant, backbone, dataset, budget, budget_unit, batch, preset, image_size, seed,
overrides, knn_bank, knn_query`` with sorted keys, no whitespace, integers for step budgets, floats for FLOP
budgets), stable across processes, machines and Python versions; the record is the one sweeps have always
written to ``spec.json``, so existing run folders keep their names. A `TaskSpec` is the same for a fine-tuning
task (kind + its result-changing settings; the seed count is not part of it, so asking for more seeds reuses the
finished ones).

Scratch baselines are runs too: their ``pretrain`` is a `ScratchBaseline` (a backbone and image size, nothing
pre-trained), recorded as ``method="scratch"``, no dataset, budget 0. A run without a first stage hashes as before
the ``init`` field existed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from sslmethods.pretrain.spec import HOW_FIELDS, PretrainSpec

from ..results.rows import SCRATCH_METHOD as SCRATCH

__all__ = ["SCRATCH", "SPEC_VERSION", "RunSpec", "ScratchBaseline", "TaskSpec", "spec_hash"]

SPEC_VERSION = 1  # part of every hash: a change of meaning gets a new version, never a silent reuse
BUDGET_UNITS = ("steps", "flops")
# The canonical record's keys, in the order spec.json files have always held them.
RECORD_KEYS = ("method", "variant", "backbone", "dataset", "budget", "budget_unit", "batch", "preset", "image_size",
               "seed", "overrides", "knn_bank", "knn_query")
# What a scratch baseline records besides its backbone and image size.
_SCRATCH_RECORD = {"method": SCRATCH, "variant": "", "dataset": "", "budget": 0, "budget_unit": "steps", "batch": 0,
                   "preset": "", "seed": 0, "overrides": [], "knn_bank": 0, "knn_query": 0}
# A run's PretrainSpec holds no how-to-run settings and no first-stage folder (the sweep gives both at training).
_NOT_IDENTITY = {name: getattr(PretrainSpec(), name) for name in (*HOW_FIELDS, "init_from")}


def spec_hash(obj: Mapping[str, Any]) -> str:
    """First 12 hex digits of SHA-256 over ``obj``'s canonical JSON (sorted keys, compact, no NaN)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _slug(*parts: str) -> str:
    text = "-".join(p for p in parts if p)
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_")[:80]


@dataclasses.dataclass(frozen=True)
class ScratchBaseline:
    """The from-scratch baseline's backbone: ``model`` (a vitcore preset) at ``image_size`` (None: the preset's);
    nothing is pre-trained (0 FLOPs). Named like `PretrainSpec`'s fields, so ``run.pretrain.model`` and
    ``run.pretrain.image_size`` read the same for every run."""

    model: str
    image_size: int | None = None


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One pre-training run of a sweep (or a scratch baseline): ``pretrain``, its `PretrainSpec` (length in
    steps, or ``flops``: a FLOP budget that becomes steps once the step is measured; how-to-run fields at their
    defaults), or a `ScratchBaseline`. ``variant``: the label of the variant's overrides ('' = the method's
    defaults; the spec's ``set`` holds every override applied, the method's common ones and the variant's).
    ``init``: the first stage of a two-stage run (its own run of the sweep), whose encoder this run starts from;
    None for an ordinary run. The read-only ``method``, ``backbone``, ``dataset``, ``budget``, ``budget_unit``,
    ``batch`` and ``seed`` are the canonical record's values, the same for scratch and pre-trained runs."""

    pretrain: PretrainSpec | ScratchBaseline
    variant: str = ""
    init: RunSpec | None = None

    def __post_init__(self) -> None:
        if self.is_scratch:
            if self.variant or self.init is not None:
                raise ValueError("a scratch run has budget 0 and no dataset, variant, overrides or first stage")
            return
        how = {k: getattr(self.pretrain, k) for k in _NOT_IDENTITY if getattr(self.pretrain, k) != _NOT_IDENTITY[k]}
        if how:
            given = ", ".join(f"{k}={v!r}" for k, v in how.items())
            raise ValueError(f"pretrain: {given}: a run's identity holds no how-to-run settings or first-stage "
                             "folder (the sweep's config.pretrain and init give them)")
        if self.init is not None and (self.init.is_scratch or self.init.init is not None
                                      or (self.init.backbone, self.init.dataset) != (self.backbone, self.dataset)):
            raise ValueError(f"init={self.init.describe()}: a first stage is a pre-training run (itself without a "
                             f"first stage) on the same backbone and dataset ({self.backbone}, {self.dataset})")

    @classmethod
    def scratch(cls, backbone: str, *, image_size: int | None = None) -> RunSpec:
        """The from-scratch baseline of ``backbone``: no pre-training, 0 FLOPs."""
        return cls(ScratchBaseline(backbone, image_size))

    @property
    def is_scratch(self) -> bool:
        return isinstance(self.pretrain, ScratchBaseline)

    @property
    def method(self) -> str:
        return SCRATCH if self.is_scratch else self.pretrain.method

    @property
    def backbone(self) -> str:
        return self.pretrain.model

    @property
    def dataset(self) -> str:
        return "" if self.is_scratch else self.pretrain.dataset

    @property
    def budget_unit(self) -> str:
        """"steps", or "flops" for a FLOP budget (the spec's ``flops``)."""
        return "steps" if self.is_scratch or self.pretrain.flops is None else "flops"

    @property
    def budget(self) -> int | float:
        """Steps (an int; 0 for scratch) or total FLOPs (a float), in ``budget_unit``."""
        if self.is_scratch:
            return 0
        return self.pretrain.steps if self.pretrain.flops is None else self.pretrain.flops

    @property
    def batch(self) -> int:
        return 0 if self.is_scratch else self.pretrain.batch

    @property
    def seed(self) -> int:
        return 0 if self.is_scratch else self.pretrain.seed

    def with_seed(self, seed: int) -> RunSpec:
        """The same run pre-trained with ``seed`` (its first stage unchanged)."""
        return dataclasses.replace(self, pretrain=dataclasses.replace(self.pretrain, seed=seed))

    def to_json(self) -> dict[str, Any]:
        """The canonical record (module docstring), hashed into ``run_id`` and written to ``spec.json``."""
        p = self.pretrain
        if self.is_scratch:
            values = _SCRATCH_RECORD | {"backbone": p.model, "image_size": p.image_size}
        else:
            values = {"method": p.method, "variant": self.variant, "backbone": p.model, "dataset": p.dataset,
                      "budget": self.budget, "budget_unit": self.budget_unit, "batch": p.batch, "preset": p.preset,
                      "image_size": p.image_size, "seed": p.seed, "overrides": list(p.set), "knn_bank": p.knn_bank,
                      "knn_query": p.knn_query}
        out = {"version": SPEC_VERSION, **{k: values[k] for k in RECORD_KEYS}}
        if self.init is not None:  # runs without a first stage keep the hash they had before the field existed
            out["init"] = self.init.to_json()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSpec:
        """The run of a canonical record (`to_json`, a ``spec.json``); ValueError naming what is wrong."""
        unknown = sorted(set(data) - {*RECORD_KEYS, "init", "version"})
        if data.get("version") != SPEC_VERSION or unknown:
            raise ValueError(f"not a version-{SPEC_VERSION} run spec (version {data.get('version')!r}, unknown "
                             f"keys {unknown})")
        values = {"overrides": [], "knn_bank": 1000, "knn_query": 500} | dict(data)
        missing = sorted(set(RECORD_KEYS) - set(values))
        if missing:
            raise ValueError(f"not a version-{SPEC_VERSION} run spec (missing keys {missing})")
        init = None if values.get("init") is None else cls.from_json(values["init"])
        if values["method"] == SCRATCH:
            if init is not None or any(values[k] != v for k, v in _SCRATCH_RECORD.items()):
                raise ValueError("a scratch run has budget 0 and no dataset, variant, overrides or first stage")
            return cls.scratch(values["backbone"], image_size=values["image_size"])
        unit, budget = values["budget_unit"], values["budget"]
        if unit not in BUDGET_UNITS:
            raise ValueError(f"budget_unit={unit!r}; expected one of {BUDGET_UNITS}")
        pretrain = PretrainSpec(
            method=values["method"], model=values["backbone"], dataset=values["dataset"],
            steps=_whole_steps(budget) if unit == "steps" else None,
            flops=_flop_budget(budget) if unit == "flops" else None, batch=values["batch"],
            preset=values["preset"], set=tuple(values["overrides"]),
            image_size=values["image_size"], seed=values["seed"], knn_bank=values["knn_bank"],
            knn_query=values["knn_query"])
        return cls(pretrain, values["variant"], init)

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


def _number(budget: Any) -> bool:
    return isinstance(budget, int | float) and not isinstance(budget, bool) and math.isfinite(budget)


def _whole_steps(budget: Any) -> int:
    """A step budget as an int (300 and 300.0 are the same run); ValueError unless a whole number >= 1."""
    if not _number(budget) or budget != int(budget) or budget < 1:
        raise ValueError(f"budget={budget!r} steps; expected a whole number >= 1")
    return int(budget)


def _flop_budget(budget: Any) -> float:
    """A FLOP budget as a float (4e11 and 400000000000 are the same run); ValueError unless a number > 0."""
    if not _number(budget) or not budget > 0:
        raise ValueError(f"budget={budget!r} FLOPs; expected > 0")
    return float(budget)


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

"""A sweep's settings as typed, checked dataclasses (`SweepSpec`), from a config file's ConfigDict.

The config format (every key, its type and default) is `SweepSpec` and its parts; README "Sweeps" shows it::

    config.methods = ("mae", "clip", "mypkg.simsiam:SimSiam")   # registry names or import paths
    config.backbones = ("vit-b16", "vit-l16"); config.datasets = ("i1k",)
    config.budgets = (250_000,); config.budget_unit = "steps"     # or "flops": total FLOPs per run
    config.batch = 4096; config.preset = "paper:i1k"
    config.per_method.dino = dict(batch=1024, budgets=(1_000_000,))
    config.per_method.mae = dict(variants=("", "method.mask_ratio=0.55", "method.decoder=mae-decoder-tiny"))
    config.tasks.segmentation = dict(dataset="ade20k", epochs=80, lrs=(1e-5, 1e-4), wds=(0.05,), seeds=1)
    config.confirm_seeds = 4                       # confirm seeds for the best point per group, and scratch
    config.pretrain_seeds = 3                      # and its encoder pre-trained 3 times (2 repeats)
    config.per_backbone = {"nfnet-f0": dict(set=("optim.agc=0.01", "optim.clip_norm=None"))}  # per backbone
    config.prepretrain = dict(method="mae", budgets=(50_000,), then=("supervised",))  # MAE pre-pretraining

`load_sweep` turns a config into a `SweepSpec`, checking at load time, before anything runs: every key (an
unknown one is an error naming it and the valid ones), every type, the methods (registered names or importable
classes), backbone presets, the optimizer preset, every override and variant field (against the method's fields),
task kinds and their settings, the CO2 hardware and region. Datasets are checked when a sweep starts
(`runner.prepare_sweep`), so a paper-scale config loads on a machine without its data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import flopdata
import flopmeter
import ml_collections
import vitcore
from sslmethods.blocks.backbones import check_method_backbone
from sslmethods.pretrain import overrides, presets
from sslmethods.pretrain.overrides import check_fields
from sslmethods.pretrain.recipes import method_class

from ..specs.ranges import check_ranges
from ..specs.settings import BackboneSettings, Co2Settings, MethodSettings, PrepretrainSettings, PretrainSettings
from ..stages.registry import TASKS
from .config_file import RENAMED, apply_overrides, load_config_file

__all__ = ["BackboneSettings", "Co2Settings", "MethodSettings", "PrepretrainSettings", "PretrainSettings", "SweepSpec",
           "load_sweep", "sweep_from_mapping"]

GROUP_FIELDS = ("method", "variant", "backbone", "pretrain_dataset")


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """Every setting of a sweep (see the module docstring). ``budgets`` are in ``budget_unit`` ("steps": steps at
    the method's batch; "flops": total pre-training FLOPs, converted with the measured FLOPs per step).
    ``image_size``: pre-training resolution (None: the backbone preset's). ``knn_bank``/``knn_query``: the
    upstream kNN monitor's sizes (0: no monitor). ``confirm_seeds``: once all points are done, this many confirm
    seeds (fine-tuning seeds after the tasks' own explore seeds) for the best point of each group of ``confirm_by``
    (chosen on explore seeds only) and for every scratch baseline; the verdicts test those points on them (0:
    none, no verdicts). ``pretrain_seeds``: how many times each of those chosen points is pre-trained (1: once,
    by the first pass; P > 1: P - 1 repeats with the pre-training seeds ``seed + 1`` .. ``seed + P - 1``, each
    fine-tuned with the confirm seeds), so its verdict includes the variance between pre-training runs; needs
    ``confirm_seeds >= 1``. ``data_dir``: where
    datasets are found ('' = $FLOPWISE_DATA or data/; a relative path is under the sweep's output folder);
    ``build_datasets``: builder options of datasets to build
    first (e.g. ``{"fmnist_scenes": {"num_examples": 2000}}``). ``slurm``: submitit parameters for
    ``--executor slurm`` (e.g. ``timeout_min``, ``slurm_partition``, ``gpus_per_node``)."""

    name: str
    methods: tuple[str, ...]
    backbones: tuple[str, ...]
    datasets: tuple[str, ...]
    budgets: tuple[float, ...]
    tasks: Mapping[str, Any]
    budget_unit: str = "steps"
    batch: int = 4096
    preset: str = "demo"
    image_size: int | None = None
    seed: int = 0
    knn_bank: int = 1000
    knn_query: int = 500
    per_method: Mapping[str, MethodSettings] = dataclasses.field(default_factory=dict)
    per_backbone: Mapping[str, BackboneSettings] = dataclasses.field(default_factory=dict)
    prepretrain: PrepretrainSettings = PrepretrainSettings()
    scratch: bool = True
    confirm_seeds: int = 0
    confirm_by: tuple[str, ...] = ("method", "backbone", "pretrain_dataset")
    pretrain_seeds: int = 1
    pretrain: PretrainSettings = PretrainSettings()
    co2: Co2Settings = Co2Settings()
    data_dir: str = ""
    build_datasets: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    slurm: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        check_ranges(self, {"batch": ">=1", "image_size": ">=1", "seed": ">=0", "knn_bank": ">=0",
                            "knn_query": ">=0", "confirm_seeds": ">=0", "pretrain_seeds": ">=1"})
        if not self.name.strip():
            raise ValueError(f"name={self.name!r}: expected a name for the sweep")

    def method_settings(self, method: str) -> MethodSettings:
        """The per-method settings of ``method`` (a name or import path), keyed by its class's ``name``."""
        return self.per_method.get(method_class(method).name, MethodSettings())

    def per_backbone_set(self, backbone: str) -> tuple[str, ...]:
        """The overrides of every run on ``backbone`` (``config.per_backbone.<backbone>.set``)."""
        return self.per_backbone[backbone].set if backbone in self.per_backbone else ()

    def data_dir_for(self, out: str | Path) -> str | None:
        """Where the datasets are: None ($FLOPWISE_DATA or data/) for '', a relative ``data_dir`` under ``out``."""
        if not self.data_dir:
            return None
        return str(Path(self.data_dir) if Path(self.data_dir).is_absolute() else Path(out) / self.data_dir)

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self) | {"tasks": {k: dataclasses.asdict(v) for k, v in self.tasks.items()}}
        if self.pretrain_seeds == 1:  # added later: recorded only when it differs, so older settings read the same
            del out["pretrain_seeds"]
        return out


_NESTED = {"per_method", "per_backbone", "prepretrain", "tasks", "pretrain", "co2", "build_datasets", "slurm"}


def _typed(owner: type, values: Any, where: str) -> Any:
    """``owner(**values)`` with every key and type checked; errors name ``where``."""
    if not isinstance(values, Mapping):
        raise ValueError(f"{where}={values!r}: expected a group of fields (a dict or ConfigDict)")
    try:
        return owner(**check_fields(owner, values, where=where))
    except (TypeError, ValueError) as err:
        message = str(err)
        raise ValueError(message if message.startswith(where) else f"{where}: {message}") from None


def sweep_from_mapping(raw: Mapping[str, Any]) -> SweepSpec:
    """A `SweepSpec` from plain values (``ConfigDict.to_dict()``), every key and type checked (not yet the
    names: `load_sweep` does that)."""

    raw = dict(raw)
    valid = {f.name for f in dataclasses.fields(SweepSpec)}
    renamed = sorted(set(raw) & set(RENAMED))
    if renamed:
        raise ValueError(f"config.{renamed[0]}: {RENAMED[renamed[0]]}")
    unknown = sorted(set(raw) - valid)
    if unknown:
        raise ValueError(f"config.{unknown[0]}: not a sweep setting; valid settings: {', '.join(sorted(valid))}")
    missing = sorted(f.name for f in dataclasses.fields(SweepSpec)
                     if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                     and f.name not in raw)
    if missing:
        raise ValueError(f"config.{missing[0]}: missing; a sweep needs {', '.join(missing)}")
    nested: dict[str, Any] = {}
    for kind, values in dict(raw.pop("tasks") or {}).items():
        if kind not in TASKS:
            raise ValueError(f"config.tasks.{kind}: not a task; valid tasks: {', '.join(TASKS)}")
        nested.setdefault("tasks", {})[kind] = _typed(TASKS[kind].settings_type, values, f"config.tasks.{kind}")
    if not nested.get("tasks"):
        raise ValueError("config.tasks: empty; a sweep needs at least one downstream task, e.g. segmentation")
    nested["per_method"] = {name: _typed(MethodSettings, values, f"config.per_method.{name}")
                            for name, values in dict(raw.pop("per_method", None) or {}).items()}
    nested["per_backbone"] = {name: _typed(BackboneSettings, values, f"config.per_backbone.{name}")
                              for name, values in dict(raw.pop("per_backbone", None) or {}).items()}
    for key, owner in (("pretrain", PretrainSettings), ("co2", Co2Settings), ("prepretrain", PrepretrainSettings)):
        if key in raw:
            nested[key] = _typed(owner, raw.pop(key) or {}, f"config.{key}")
    for key in ("build_datasets", "slurm"):
        if key in raw:
            nested[key] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in dict(raw.pop(key) or {}).items()}
    top = check_fields(SweepSpec, raw, where="config", skip=tuple(_NESTED))
    try:
        return SweepSpec(**top, **nested)
    except ValueError as err:  # the range checks of SweepSpec's own fields: "seed=-1: expected ..."
        raise ValueError(f"config.{err}") from None


def _check_names(sweep: SweepSpec) -> None:

    for field in ("methods", "backbones", "datasets", "budgets"):
        if not getattr(sweep, field):
            raise ValueError(f"config.{field}: empty; expected at least one")
    if sweep.budget_unit not in ("steps", "flops"):
        raise ValueError(f"config.budget_unit={sweep.budget_unit!r}: expected 'steps' or 'flops'")
    for where, budgets in (("budgets", sweep.budgets),
                           *((f"per_method.{k}.budgets", v.budgets or ()) for k, v in sweep.per_method.items())):
        bad = [b for b in budgets if not (math.isfinite(b) and b > 0)  # 1e999 reads as inf
               or (sweep.budget_unit == "steps" and b != int(b))]
        if bad:
            raise ValueError(f"config.{where}: {bad[0]:g}; expected positive {sweep.budget_unit}"
                             f"{' (whole numbers)' if sweep.budget_unit == 'steps' else ''}")
    unknown = [b for b in sweep.backbones if b not in vitcore.PRESETS]
    if unknown:
        raise ValueError(f"config.backbones: {unknown[0]!r} is not a preset; expected some of "
                         f"{', '.join(vitcore.PRESETS)}")
    if sweep.preset not in presets.PRESET_NAMES:
        raise ValueError(f"config.preset={sweep.preset!r}: expected one of {', '.join(presets.PRESET_NAMES)}")
    classes = {}
    for method in sweep.methods:
        try:
            classes[method_class(method).name] = method_class(method)
        except ValueError as err:
            raise ValueError(f"config.methods: {err}") from None
    for method in (*sweep.methods, *((sweep.prepretrain.method,) if sweep.prepretrain.budgets else ())):
        cls = method_class(method)
        for backbone in sweep.backbones:
            try:
                check_method_backbone(method, cls.vit_only, vitcore.get_config(backbone), model=backbone)
            except ValueError as err:
                raise ValueError(f"config.methods: {err}") from None
    for name, settings in sweep.per_backbone.items():
        if name not in sweep.backbones:
            raise ValueError(f"config.per_backbone.{name}: not a backbone of this sweep; its backbones are "
                             f"{', '.join(sweep.backbones)}")
        for cls in classes.values():
            try:
                overrides.parse_overrides(settings.set, cls)
            except ValueError as err:
                raise ValueError(f"config.per_backbone.{name}: {err}") from None
    _check_prepretrain(sweep, classes)
    for name, settings in sweep.per_method.items():
        if name not in classes:
            raise ValueError(f"config.per_method.{name}: not a method of this sweep; its methods are "
                             f"{', '.join(classes)}")
        for entry in (*settings.variants, *settings.set):
            try:
                overrides.parse_overrides(entry.split(), classes[name])
            except ValueError as err:
                raise ValueError(f"config.per_method.{name}: {err}") from None
    _check_builds(sweep)
    bad = [f for f in sweep.confirm_by if f not in GROUP_FIELDS]
    if bad:
        raise ValueError(f"config.confirm_by: {bad[0]!r}; expected some of {', '.join(GROUP_FIELDS)}")
    for field, lookup in (("hardware", flopmeter.hardware), ("region", flopmeter.region)):
        try:
            lookup(getattr(sweep.co2, field))
        except (KeyError, ValueError) as err:
            raise ValueError(f"config.co2.{field}: {err.args[0]}") from None
    if (sweep.co2.fit_a is None) != (sweep.co2.fit_b is None):
        raise ValueError("config.co2: give both fit_a and fit_b (steps/s = fit_a * FLOPs**fit_b) or neither")
    if sweep.batch < 1:
        raise ValueError(f"config.batch={sweep.batch!r}: expected >= 1")
    if sweep.confirm_seeds < 0:
        raise ValueError(f"config.confirm_seeds={sweep.confirm_seeds!r}: expected >= 0")
    if sweep.pretrain_seeds > 1 and sweep.confirm_seeds == 0:
        raise ValueError(f"config.pretrain_seeds={sweep.pretrain_seeds}: repeated pre-training is fine-tuned with "
                         "the confirm seeds; set config.confirm_seeds >= 1 (or pretrain_seeds=1)")


def _check_builds(sweep: SweepSpec) -> None:
    """config.build_datasets: known builders and the options each takes (nothing is built here)."""
    for name, options in sweep.build_datasets.items():
        if name not in flopdata.BUILDERS:
            raise ValueError(f"config.build_datasets.{name}: not a dataset builder; expected some of "
                             f"{', '.join(sorted(flopdata.BUILDERS))}")
        if not isinstance(options, Mapping):
            raise ValueError(f"config.build_datasets.{name}={options!r}: expected a dict of builder options")
        unknown = sorted(set(options) - set(flopdata.BUILDERS[name].OPTIONS))
        if unknown:
            raise ValueError(f"config.build_datasets.{name}: {', '.join(unknown)} not an option of {name}; it takes "
                             f"{', '.join(flopdata.BUILDERS[name].OPTIONS)}")


def _check_prepretrain(sweep: SweepSpec, classes: Mapping[str, type]) -> None:
    """config.prepretrain: a known first-stage method, its overrides, budgets, and second stages of the sweep."""

    pp = sweep.prepretrain
    if not pp.budgets:
        if pp.then:
            raise ValueError(f"config.prepretrain.then={pp.then!r} without budgets: give the first stage's budgets")
        return
    try:
        first = method_class(pp.method)
        overrides.parse_overrides(pp.set, first)
    except ValueError as err:
        raise ValueError(f"config.prepretrain: {err}") from None
    bad = [b for b in pp.budgets if not (math.isfinite(b) and b > 0)
           or (sweep.budget_unit == "steps" and b != int(b))]
    if bad:
        raise ValueError(f"config.prepretrain.budgets: {bad[0]:g}; expected positive {sweep.budget_unit}")
    if not pp.then:
        raise ValueError("config.prepretrain.then: empty; name the second-stage methods (e.g. ('supervised',))")
    for name in pp.then:
        if name not in classes:
            raise ValueError(f"config.prepretrain.then: {name!r} is not a method of this sweep; its methods are "
                             f"{', '.join(classes)}")
    if pp.batch is not None and pp.batch < 1:
        raise ValueError(f"config.prepretrain.batch={pp.batch!r}: expected >= 1")


def _defaults(owner: type) -> dict[str, Any]:
    return {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())
            for f in dataclasses.fields(owner)
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING}


def with_defaults(config: Any) -> Any:
    """A ConfigDict holding every setting (the config's values over the dataclasses' defaults), so that any
    field of the schema can be overridden from the command line, and its errors list every valid field."""

    raw = config.to_dict()
    full = {k: v for k, v in _defaults(SweepSpec).items() if k not in _NESTED} | {
        "pretrain": _defaults(PretrainSettings), "co2": _defaults(Co2Settings),
        "prepretrain": _defaults(PrepretrainSettings)}
    for key in ("pretrain", "co2", "prepretrain"):
        full[key] |= dict(raw.pop(key, None) or {})
    per_method = dict(raw.pop("per_method", None) or {})
    for method in raw.get("methods") or ():
        with contextlib.suppress(ValueError):  # an unknown method is reported by load_sweep's checks
            per_method.setdefault(method_class(method).name, {})
    full["per_method"] = {name: _defaults(MethodSettings) | dict(values) for name, values in per_method.items()}
    full["per_backbone"] = {name: _defaults(BackboneSettings) | dict(values)
                            for name, values in dict(raw.pop("per_backbone", None) or {}).items()}
    full["tasks"] = {kind: (_defaults(TASKS[kind].settings_type) if kind in TASKS else {}) | dict(values)
                     for kind, values in dict(raw.pop("tasks", None) or {}).items()}
    return ml_collections.ConfigDict(full | raw)


def _method_names(methods: Sequence[str]) -> set[str]:
    """The class names of ``methods`` that resolve (an unknown one is reported by `_check_names`)."""
    names = set()
    for method in methods:
        with contextlib.suppress(ValueError):
            names.add(method_class(method).name)
    return names


def load_sweep(config: Any, overrides: Sequence[str] = ()) -> SweepSpec:
    """The checked `SweepSpec` of ``config`` (a ConfigDict, a mapping, or a config file ``path.py[:arg]``) with
    ``--config.x=value`` ``overrides``. ValueError naming the first bad key, name or value."""

    if isinstance(config, str):
        config = load_config_file(config)
    elif isinstance(config, Mapping) and not isinstance(config, ml_collections.ConfigDict):
        config = ml_collections.ConfigDict(dict(config))
    config = with_defaults(config)
    before = tuple(config.get("methods") or ())
    if overrides:
        apply_overrides(config, overrides)
    sweep = sweep_from_mapping(config.to_dict())
    # with_defaults' empty entries are no settings; nor are those of methods an override dropped (the config's
    # settings for its supervised runs do not stop `--config.methods=('mae',)`)
    dropped = _method_names(before) - _method_names(sweep.methods)
    names = _method_names(sweep.methods)
    unknown = sorted(k for k in sweep.per_method if k not in names and k not in dropped)
    if unknown and all(_method_names((method,)) for method in sweep.methods):  # else _check_names names it
        raise ValueError(f"config.per_method.{unknown[0]}: not a method of this sweep; its methods are "
                         f"{', '.join(sorted(names))}")
    sweep = dataclasses.replace(sweep, per_method={k: v for k, v in sweep.per_method.items()
                                                   if v != MethodSettings() and k not in dropped})
    _check_names(sweep)
    return sweep

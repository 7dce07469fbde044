"""The parts of a sweep's settings (`flopstudy.sweep.config.SweepSpec` holds them): per-method, per-backbone,
MAE pre-pretraining, how pre-training runs, and the study's CO2 model. Frozen dataclasses, checked on construction;
`PretrainSettings` is `sslmethods.PretrainSpec`'s how-to-run fields (declared there once). The pre-training stage
reads `PretrainSettings`, so these sit below both the sweep and its stages."""

from __future__ import annotations

import dataclasses
import math

from flopmeter import STUDY_CHIPS, STUDY_HARDWARE, STUDY_REGION
from sslmethods.pretrain.spec import HOW_FIELDS, PretrainSpec

from .ranges import check_ranges

__all__ = ["BackboneSettings", "Co2Settings", "MethodSettings", "PrepretrainSettings", "PretrainSettings"]


@dataclasses.dataclass(frozen=True)
class MethodSettings:
    """Per-method settings (``config.per_method.<method name>``), each replacing the sweep-wide one: ``budgets``,
    ``batch``; ``variants``: one run per entry, each a space-separated list of ``section.field=value`` overrides
    ('' = the method's defaults); ``set``: overrides applied to every variant of the method."""

    budgets: tuple[float, ...] | None = None
    batch: int | None = None
    variants: tuple[str, ...] = ("",)
    set: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_ranges(self, {"batch": ">=1"})


@dataclasses.dataclass(frozen=True)
class BackboneSettings:
    """Per-backbone settings (``config.per_backbone.<preset>``): ``set``, ``section.field=value`` overrides of
    every run on that backbone (after the method's ``set``, before its variant's), e.g. an NFNet's adaptive
    gradient clipping ``optim.agc=0.01 optim.clip_norm=None``. They do not enter the variant label."""

    set: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class PrepretrainSettings:
    """MAE pre-pretraining (Singh et al. 2023), ``config.prepretrain``: every run of a method in ``then`` (names
    of ``config.methods``) is also run as the second stage of a chain whose first stage is ``method`` (with
    ``set`` overrides; ``batch`` or the method's) trained for each of ``budgets`` (in ``budget_unit``), on the
    same backbone and dataset. The second stage is built on the first stage's exported architecture and starts
    from its encoder. A first stage is an ordinary run of the sweep (shared by every chain that needs it; the
    same run as a plain run of ``method`` with the same settings); a chain's FLOPs are both stages'. Empty
    ``budgets``: no chains."""

    method: str = "mae"
    budgets: tuple[float, ...] = ()
    then: tuple[str, ...] = ()
    set: tuple[str, ...] = ()
    batch: int | None = None

    def __post_init__(self) -> None:
        check_ranges(self, {"batch": ">=1"})


def _check_pretrain_settings(self: PretrainSettings) -> None:
    PretrainSpec(**dataclasses.asdict(self))  # the spec's own checks: "log_every=0: expected an int >= 1"


# How pre-training runs (``config.pretrain``): `PretrainSpec`'s fields that say how a run executes (`HOW_FIELDS`:
# cadences, decoding workers, sharding, NaN policy, CO2 inputs, TensorBoard), with the spec's defaults and help.
# None of them is part of a run's identity; each run's `PretrainSpec` takes them as they are.
PretrainSettings = dataclasses.make_dataclass(
    "PretrainSettings",
    [(f.name, f.type, dataclasses.field(default=f.default, metadata=f.metadata))
     for f in dataclasses.fields(PretrainSpec) if f.name in HOW_FIELDS],
    frozen=True,
    namespace={"__module__": __name__, "__post_init__": _check_pretrain_settings,
               "__doc__": "How pre-training runs: `PretrainSpec`'s `HOW_FIELDS` (not what it computes)."})


@dataclasses.dataclass(frozen=True)
class Co2Settings:
    """The study's CO2 model for the ``study_*`` columns: steps/s = fit_a * (FLOPs/step) ** fit_b on ``chips``
    x ``hardware`` (flopmeter's tables; defaults: the study's 32 TPUv3 in gcp europe-west1,
    ``flopmeter.STUDY_*``), energy at the hardware's watts, CO2 at the region's intensity. Without
    a fit, the columns are filled only when the sweep itself has runs measured on that hardware and chip count
    (fitted from them); otherwise they stay empty (no guessed utilisation)."""

    hardware: str = STUDY_HARDWARE
    chips: int = STUDY_CHIPS
    region: str = STUDY_REGION
    fit_a: float | None = None
    fit_b: float | None = None

    def __post_init__(self) -> None:
        check_ranges(self, {"chips": ">=1", "fit_a": ">0"})
        if self.fit_b is not None and not math.isfinite(self.fit_b):
            raise ValueError(f"fit_b={self.fit_b!r}: expected a finite exponent")

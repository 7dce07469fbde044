"""The study's CO2 model (Koppula et al. 2022, appendix A.1): steps/s from FLOPs/step, then time, energy, CO2.

1. Fit `steps_per_second = a * flops_per_step ** b` by least squares in log space on short measured runs.
2. Time for `steps` steps on the reference hardware = steps / predicted steps/s.
3. Energy (kWh) = chips * watts * hours / 1000, times PUE when one is given.
4. kgCO2e = kWh * grid intensity (gCO2e/kWh) / 1000.
Defaults follow the ML CO2 Impact calculator: TPUv3 at 283 W per chip, gcp europe-west1 at 267 gCO2e/kWh,
PUE 1.09 (applied only on request, as in the study's headline numbers).
"""

import dataclasses
from collections.abc import Sequence

import numpy as np

from flopmeter.data_tables import HardwareTable, RegionTable, hardware, region

# The study's reference hardware (appendix A.1), the one place it is written: every CO2 default of the project
# (here, the sweep's and the report's CO2 settings, the planner, the run engine's region) names these.
STUDY_HARDWARE = "tpu-v3"
"""The study's reference accelerator (a row of the hardware table): TPUv3."""
STUDY_CHIPS = 32
"""Chips of the study's reference hardware: time and energy are predicted for 32 TPUv3 chips."""
STUDY_REGION = "gcp:europe-west1"
"""The study's reference region (a row of the region table): gcp europe-west1."""


@dataclasses.dataclass(frozen=True)
class PowerLawFit:
    """`steps_per_second = a * flops_per_step ** b`, fitted in log space; `r_squared` of the log-log fit."""

    a: float
    b: float
    r_squared: float

    def steps_per_second(self, flops_per_step: float | int) -> float:
        """Predicted steps per second for a step of `flops_per_step` FLOPs."""
        if flops_per_step <= 0:
            raise ValueError(f"flops_per_step={flops_per_step!r} is invalid; expected > 0")
        return self.a * flops_per_step**self.b

    def hours(self, flops_per_step: float | int, steps: int) -> float:
        """Predicted wall-clock hours for `steps` steps on the hardware the fit was measured on."""
        if steps < 0:
            raise ValueError(f"steps={steps!r} is invalid; expected >= 0")
        return steps / self.steps_per_second(flops_per_step) / 3600.0


def fit_power_law(
    flops_per_step: np.ndarray | Sequence[float | int],
    steps_per_second: np.ndarray | Sequence[float | int],
) -> PowerLawFit:
    """Least-squares fit of log(steps/s) = log(a) + b * log(FLOPs/step); needs >= 2 distinct positive x."""
    # Plain 1-D arrays, not jaxtyping annotations: flopmeter depends on jax and numpy only (docs/design.md section 1).
    x = np.asarray(flops_per_step, dtype=np.float64)
    y = np.asarray(steps_per_second, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise ValueError(
            f"flops_per_step (shape {x.shape}) and steps_per_second (shape {y.shape}) must be 1-D "
            "sequences of the same length >= 2"
        )
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("flops_per_step and steps_per_second must be positive (the fit is in log space)")
    lx, ly = np.log(x), np.log(y)
    if np.ptp(lx) == 0:
        raise ValueError(
            f"flops_per_step={list(x)} has a single distinct value; the exponent is undetermined"
        )
    b, log_a = np.polyfit(lx, ly, 1)
    residual = ly - (log_a + b * lx)
    total = ly - ly.mean()
    ss_tot = float(total @ total)
    r_squared = 1.0 - float(residual @ residual) / ss_tot if ss_tot > 0 else 1.0
    return PowerLawFit(a=float(np.exp(log_a)), b=float(b), r_squared=r_squared)


def energy_kwh(
    *,
    chips: int,
    hours: float | int,
    watts: float | int | None = None,
    hardware_name: str = STUDY_HARDWARE,
    pue: float | int | None = None,
    hardware_table: HardwareTable | None = None,
) -> float:
    """Energy in kWh: chips * watts * hours / 1000 (* PUE when given). `watts` defaults to the row
    `hardware_name` of `hardware_table` (default: the shipped table).
    """
    if chips < 1 or hours < 0:
        raise ValueError(f"chips={chips!r}, hours={hours!r} are invalid; expected chips >= 1 and hours >= 0")
    if watts is None:
        watts = hardware(hardware_name, table=hardware_table).watts
        if watts is None:
            raise ValueError(f"hardware={hardware_name!r} has no power figure in the table; pass watts=")
    if pue is not None and pue < 1.0:
        raise ValueError(f"pue={pue!r} is invalid; expected >= 1 (or None for no overhead)")
    return chips * watts * hours / 1000.0 * (1.0 if pue is None else pue)


def co2_kg(
    kwh: float | int,
    *,
    gco2e_per_kwh: float | int | None = None,
    region_name: str = STUDY_REGION,
    region_table: RegionTable | None = None,
) -> float:
    """kgCO2e for `kwh` of electricity at the region's grid intensity (or an explicit `gco2e_per_kwh`);
    the region is looked up in `region_table` (default: the shipped table)."""
    if kwh < 0:
        raise ValueError(f"kwh={kwh!r} is invalid; expected >= 0")
    if gco2e_per_kwh is None:
        intensity = region(region_name, table=region_table).gco2e_per_kwh
    else:
        intensity = gco2e_per_kwh
    return kwh * intensity / 1000.0


@dataclasses.dataclass(frozen=True)
class Footprint:
    """Predicted time, energy and emissions of a run."""

    hours: float
    kwh: float
    kg_co2e: float


def footprint(
    fit: PowerLawFit,
    *,
    flops_per_step: float | int,
    steps: int,
    chips: int = STUDY_CHIPS,
    hardware_name: str = STUDY_HARDWARE,
    region_name: str = STUDY_REGION,
    use_pue: bool = False,
    hardware_table: HardwareTable | None = None,
    region_table: RegionTable | None = None,
) -> Footprint:
    """Time, energy and CO2 of `steps` steps predicted from `fit` on `chips` chips of `hardware_name`.

    `use_pue=True` multiplies energy by the region's PUE (an error if the region has none). Rows come from
    `hardware_table` / `region_table` (default: the shipped tables).
    """
    hours = fit.hours(flops_per_step, steps)
    pue = None
    if use_pue:
        pue = region(region_name, table=region_table).pue
        if pue is None:
            raise ValueError(
                f"region={region_name!r} has no PUE in the table; pass region_table= with a row that has one "
                "(RegionTable.shipped().with_rows(...)) or use use_pue=False"
            )
    kwh = energy_kwh(chips=chips, hours=hours, hardware_name=hardware_name, pue=pue, hardware_table=hardware_table)
    return Footprint(hours=hours, kwh=kwh, kg_co2e=co2_kg(kwh, region_name=region_name, region_table=region_table))

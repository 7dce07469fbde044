"""Wall time, energy and CO2 of a pre-training run on given hardware, and budgets in FLOPs, hours or kgCO2e.

Time comes from flopmeter's fitted model ``steps/s = a * (FLOPs/step) ** b`` where the results hold at least two
runs with distinct FLOPs per step measured on that hardware and chip count (``hardware``, ``num_devices``,
``pretrain_seconds`` columns); otherwise from the datasheet peak at an assumed model FLOP utilisation (MFU),
which every description states. Energy = chips * watts * hours (* PUE on request); CO2 = energy * grid intensity
(`flopmeter.energy_kwh`, `flopmeter.co2_kg`, the shipped hardware and region tables).

Budget syntax (`parse_budget`): ``3e18`` or ``3e18flops`` (FLOPs, whole program), ``100h`` (device-hours:
chip-hours summed over chips, so 100h on 32 chips is 3.1 h of wall time), ``5kgco2e`` (case-insensitive).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence

import flopmeter

from ..results.rows import ResultRow

__all__ = ["Budget", "RunCost", "Throughput", "budget_flops", "parse_budget", "run_cost", "throughput_model"]

_BUDGET = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(flops|h|kgco2e)?\s*$", re.IGNORECASE)
_UNITS = {None: "flops", "flops": "flops", "h": "device-hours", "kgco2e": "kgCO2e"}


@dataclasses.dataclass(frozen=True)
class Budget:
    """A compute budget: ``amount`` in ``unit`` ("flops", "device-hours" or "kgCO2e")."""

    amount: float
    unit: str

    def describe(self) -> str:
        return {"flops": f"{self.amount:.3g} FLOPs", "device-hours": f"{self.amount:.4g} device-hours",
                "kgCO2e": f"{self.amount:.4g} kgCO2e"}[self.unit]


def parse_budget(text: str) -> Budget:
    """``"3e18"``/``"3e18flops"`` -> FLOPs, ``"100h"`` -> device-hours, ``"5kgCO2e"`` -> kgCO2e; ValueError
    otherwise (also for a zero or non-finite amount)."""
    match = _BUDGET.match(text)
    if match is None:
        raise ValueError(f"--budget {text!r}: expected FLOPs (3e18 or 3e18flops), device-hours (100h) or kgCO2e "
                         "(5kgCO2e)")
    amount = float(match.group(1))
    if not (math.isfinite(amount) and amount > 0):
        raise ValueError(f"--budget {text!r}: expected a positive finite amount")
    unit = match.group(2)
    return Budget(amount, _UNITS[None if unit is None else unit.lower()])


@dataclasses.dataclass(frozen=True)
class Throughput:
    """Steps per second of ``chips`` chips of ``hardware``: fitted (``fit``) or peak x ``mfu``."""

    hardware: str
    chips: int
    fit: flopmeter.PowerLawFit | None
    mfu: float
    peak_flops: float

    def steps_per_second(self, flops_per_step: float) -> float:
        if self.fit is not None:
            return self.fit.steps_per_second(flops_per_step)
        return self.chips * self.peak_flops * self.mfu / flops_per_step

    def hours(self, flops_per_step: float, steps: float) -> float:
        return steps / self.steps_per_second(flops_per_step) / 3600.0

    def describe(self) -> str:
        if self.fit is not None:
            return (f"{self.chips} x {self.hardware}: fitted steps/s = {self.fit.a:.3g} * (FLOPs/step)^"
                    f"{self.fit.b:.3f} (R^2 {self.fit.r_squared:.3f}) from runs measured on it")
        return (f"{self.chips} x {self.hardware}: datasheet peak {self.peak_flops:.3g} FLOP/s per chip at an "
                f"assumed MFU of {self.mfu:.0%} (no measured runs on this hardware to fit)")


def throughput_model(rows: Sequence[ResultRow], *, hardware_name: str = flopmeter.STUDY_HARDWARE,
                     chips: int = flopmeter.STUDY_CHIPS, mfu: float = 0.4) -> Throughput:
    """The time model for ``chips`` x ``hardware_name`` (module docstring); ValueError for an unknown hardware
    (listing the table), chips < 1 or an MFU outside (0, 1]."""
    if chips < 1:
        raise ValueError(f"--chips {chips}: expected >= 1")
    if not 0 < mfu <= 1:
        raise ValueError(f"--mfu {mfu}: expected a fraction in (0, 1]")
    chip = flopmeter.hardware(hardware_name)
    measured = {}
    for r in rows:
        if r.hardware == hardware_name and r.num_devices == chips and r.pretrain_seconds and r.pretrain_steps \
                and r.step_flops:
            measured[(r.run_dir, r.step_flops)] = (r.step_flops, r.pretrain_steps / r.pretrain_seconds)
    fit = None
    if len({x for x, _ in measured.values()}) >= 2:
        x, y = zip(*measured.values(), strict=True)
        fit = flopmeter.fit_power_law(list(x), list(y))
    return Throughput(hardware_name, chips, fit, mfu, chip.peak_flops)


@dataclasses.dataclass(frozen=True)
class RunCost:
    """Wall hours, energy (kWh) and emissions (kgCO2e) of a run; energy/CO2 None without a power figure."""

    hours: float
    kwh: float | None
    kg_co2e: float | None
    note: str

    def describe(self) -> str:
        energy = "energy unknown" if self.kwh is None else f"{self.kwh:.3g} kWh, {self.kg_co2e:.3g} kgCO2e"
        return f"{self.hours:.3g} h wall time, {energy}" + (f" ({self.note})" if self.note else "")


def _pue(region_name: str, use_pue: bool) -> float | None:
    if not use_pue:
        return None
    pue = flopmeter.region(region_name).pue
    if pue is None:
        raise ValueError(f"--region {region_name!r} has no PUE in the table; drop --pue")
    return pue


def run_cost(throughput: Throughput, *, flops_per_step: float, steps: float,
             region_name: str = flopmeter.STUDY_REGION, use_pue: bool = False) -> RunCost:
    """Time, energy and CO2 of ``steps`` steps of ``flops_per_step`` FLOPs on ``throughput``'s hardware."""
    hours = throughput.hours(flops_per_step, steps)
    watts = flopmeter.hardware(throughput.hardware).watts
    if watts is None:
        return RunCost(hours, None, None, f"no power figure for {throughput.hardware} in the hardware table")
    kwh = flopmeter.energy_kwh(chips=throughput.chips, hours=hours, watts=watts, pue=_pue(region_name, use_pue))
    return RunCost(hours, kwh, flopmeter.co2_kg(kwh, region_name=region_name), "")


def budget_flops(budget: Budget, throughput: Throughput, *, flops_per_step: float | None,
                 region_name: str = flopmeter.STUDY_REGION, use_pue: bool = False) -> float:
    """The pre-training FLOPs ``budget`` buys for a configuration with ``flops_per_step`` on ``throughput``'s
    hardware (the FLOPs themselves for a FLOP budget)."""
    if budget.unit == "flops":
        return budget.amount
    if budget.unit == "device-hours":
        wall_hours = budget.amount / throughput.chips
    else:
        watts = flopmeter.hardware(throughput.hardware).watts
        intensity = flopmeter.region(region_name).gco2e_per_kwh
        if watts is None or intensity <= 0:
            raise ValueError(f"--budget {budget.describe()}: needs a power figure for {throughput.hardware} and a "
                             f"positive grid intensity for {region_name}")
        kwh = budget.amount * 1000.0 / intensity
        wall_hours = kwh * 1000.0 / (throughput.chips * watts * (_pue(region_name, use_pue) or 1.0))
    if flops_per_step is None:
        if throughput.fit is not None:
            raise ValueError("a configuration without FLOPs per step cannot use the fitted steps/s model")
        return wall_hours * 3600.0 * throughput.chips * throughput.peak_flops * throughput.mfu
    return wall_hours * 3600.0 * throughput.steps_per_second(flops_per_step) * flops_per_step

"""The hardware and grid-region tables: CSV data files shipped with the package, extendable by the user.

Every row carries a `source`; a user row must name one too, so a CO2 figure can always be traced back.
"""

import csv
import dataclasses
import importlib.resources
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Hardware:
    """One accelerator chip: dense bf16 peak (FLOP/s) and power draw per chip (None when not published)."""

    name: str
    peak_flops: float
    watts: float | None
    source: str


@dataclasses.dataclass(frozen=True)
class Region:
    """One data-centre region: grid carbon intensity (gCO2e/kWh) and PUE (None when not given)."""

    name: str
    gco2e_per_kwh: float
    pue: float | None
    source: str


def _optional_float(text: str) -> float | None:
    return float(text) if text.strip() else None


def _read_rows(path: Path | None, default_file: str) -> list[dict[str, str]]:
    if path is None:
        with importlib.resources.files("flopmeter").joinpath("data", default_file).open() as handle:
            return list(csv.DictReader(handle))
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


_HARDWARE: dict[str, Hardware] = {}
_REGIONS: dict[str, Region] = {}


def _require_source(source: str) -> None:
    if not isinstance(source, str) or not source.strip():
        raise ValueError(
            f"source={source!r} is invalid; expected a non-empty citation of where the numbers come from"
        )


def register_hardware(
    name: str, *, peak_flops: float | int, watts: float | int | None, source: str
) -> Hardware:
    """Add or replace a hardware row (peak in FLOP/s per chip, watts per chip)."""
    _require_source(source)
    if peak_flops <= 0 or (watts is not None and watts <= 0):
        raise ValueError(f"peak_flops={peak_flops!r}, watts={watts!r} are invalid; expected positive numbers")
    _HARDWARE[name] = Hardware(name, float(peak_flops), None if watts is None else float(watts), source)
    return _HARDWARE[name]


def register_region(name: str, *, gco2e_per_kwh: float | int, pue: float | int | None, source: str) -> Region:
    """Add or replace a region row (grid intensity in gCO2e per kWh)."""
    _require_source(source)
    if gco2e_per_kwh < 0 or (pue is not None and pue < 1.0):
        raise ValueError(
            f"gco2e_per_kwh={gco2e_per_kwh!r}, pue={pue!r} are invalid; expected intensity >= 0, PUE >= 1"
        )
    _REGIONS[name] = Region(name, float(gco2e_per_kwh), None if pue is None else float(pue), source)
    return _REGIONS[name]


def load_hardware_table(path: str | Path | None = None) -> dict[str, Hardware]:
    """Read a CSV (`name,peak_bf16_tflops,watts,source`) into the registry; None reads the shipped table."""
    for row in _read_rows(None if path is None else Path(path), "hardware.csv"):
        register_hardware(
            row["name"],
            peak_flops=float(row["peak_bf16_tflops"]) * 1e12,
            watts=_optional_float(row["watts"]),
            source=row["source"],
        )
    return dict(_HARDWARE)


def load_region_table(path: str | Path | None = None) -> dict[str, Region]:
    """Read a CSV (`region,gco2e_per_kwh,pue,source`) into the registry; None reads the shipped table."""
    for row in _read_rows(None if path is None else Path(path), "regions.csv"):
        register_region(
            row["region"],
            gco2e_per_kwh=float(row["gco2e_per_kwh"]),
            pue=_optional_float(row["pue"]),
            source=row["source"],
        )
    return dict(_REGIONS)


def hardware(name: str) -> Hardware:
    """Look up a chip by name (shipped table plus anything registered)."""
    if not _HARDWARE:
        load_hardware_table()
    if name not in _HARDWARE:
        raise ValueError(
            f"hardware={name!r} is unknown; expected one of {sorted(_HARDWARE)} or register_hardware()"
        )
    return _HARDWARE[name]


def region(name: str) -> Region:
    """Look up a region by name (`provider:region`, e.g. `gcp:europe-west1`)."""
    if not _REGIONS:
        load_region_table()
    if name not in _REGIONS:
        raise ValueError(
            f"region={name!r} is unknown; expected one of {sorted(_REGIONS)} or register_region()"
        )
    return _REGIONS[name]

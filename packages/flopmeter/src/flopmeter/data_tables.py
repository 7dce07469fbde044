"""The hardware and grid-region tables: immutable table objects holding the shipped CSV rows plus the user's.

There is no registry: `HardwareTable.shipped()` is the package's table, `.with_rows(...)` / `.with_csv(path)`
return a new table with the user's rows added (a row of the same name replaces the shipped one), and every
function that looks something up takes `table=` (default: the shipped table). One caller's rows can never
leak into another's. Every row carries a `source`, so a CO2 figure can always be traced back.
"""

import csv
import dataclasses
import functools
import importlib.resources
import re
import types
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Generic, TypeVar


def _require_source(source: str) -> None:
    if not isinstance(source, str) or not source.strip():
        raise ValueError(
            f"source={source!r} is invalid; expected a non-empty citation of where the numbers come from"
        )


@dataclasses.dataclass(frozen=True)
class Hardware:
    """One accelerator chip: dense bf16 peak (FLOP/s per chip), power per chip (None when not published),
    and a regular expression matching JAX's `device.device_kind` for it (None: never matched)."""

    name: str
    peak_flops: float | int
    watts: float | int | None
    source: str
    device_kind: str | None = None

    def __post_init__(self) -> None:
        _require_source(self.source)
        object.__setattr__(self, "peak_flops", float(self.peak_flops))  # ints welcome, stored as floats
        object.__setattr__(self, "watts", None if self.watts is None else float(self.watts))
        if self.peak_flops <= 0 or (self.watts is not None and self.watts <= 0):
            raise ValueError(
                f"peak_flops={self.peak_flops!r}, watts={self.watts!r} are invalid; expected positive numbers"
            )
        if self.device_kind is not None:
            re.compile(self.device_kind)


@dataclasses.dataclass(frozen=True)
class Region:
    """One data-centre region: grid carbon intensity (gCO2e/kWh) and PUE (None when not given)."""

    name: str
    gco2e_per_kwh: float | int
    pue: float | int | None
    source: str

    def __post_init__(self) -> None:
        _require_source(self.source)
        object.__setattr__(self, "gco2e_per_kwh", float(self.gco2e_per_kwh))
        object.__setattr__(self, "pue", None if self.pue is None else float(self.pue))
        if self.gco2e_per_kwh < 0 or (self.pue is not None and self.pue < 1.0):
            raise ValueError(
                f"gco2e_per_kwh={self.gco2e_per_kwh!r}, pue={self.pue!r} are invalid; expected intensity >= 0, "
                "PUE >= 1"
            )


def _optional_float(text: str | None) -> float | None:
    return float(text) if text is not None and text.strip() else None


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


Row = TypeVar("Row", Hardware, Region)


class _Table(Generic[Row]):
    """An immutable name -> row mapping; subclasses say which CSV and row type they hold."""

    _kind: str
    _shipped_file: str

    def __init__(self, rows: Iterable[Row] = ()) -> None:
        self._rows = types.MappingProxyType({row.name: row for row in rows})

    @staticmethod
    def _row_from_csv(record: dict[str, str]) -> Row:
        raise NotImplementedError

    @classmethod
    def shipped(cls) -> "_Table":
        """The table shipped with flopmeter (`src/flopmeter/data/`), read once."""
        return _shipped(cls)

    @classmethod
    def from_csv(cls, path: str | Path) -> "_Table":
        """A table of `path`'s rows only (same columns as the shipped CSV)."""
        return cls(cls._row_from_csv(record) for record in _read_csv(Path(path)))

    def with_rows(self, *rows: Row) -> "_Table":
        """A new table: this one plus `rows` (a row named like an existing one replaces it)."""
        return type(self)([*self._rows.values(), *rows])

    def with_csv(self, path: str | Path) -> "_Table":
        """A new table: this one plus the rows of the CSV at `path`."""
        return self.with_rows(*type(self).from_csv(path)._rows.values())

    def __getitem__(self, name: str) -> Row:
        if name not in self._rows:
            raise ValueError(
                f"{self._kind}={name!r} is unknown; expected one of {sorted(self._rows)}, or a table with "
                f"your row: {type(self).__name__}.shipped().with_rows(...)"
            )
        return self._rows[name]

    def __contains__(self, name: object) -> bool:
        return name in self._rows

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def rows(self) -> tuple[Row, ...]:
        """All rows, in table order."""
        return tuple(self._rows.values())


class HardwareTable(_Table[Hardware]):
    """Accelerator chips by name. CSV columns: `name,peak_bf16_tflops,watts,device_kind,source`
    (`watts` and `device_kind` may be empty)."""

    _kind = "hardware"
    _shipped_file = "hardware.csv"

    @staticmethod
    def _row_from_csv(record: dict[str, str]) -> Hardware:
        return Hardware(
            record["name"],
            peak_flops=float(record["peak_bf16_tflops"]) * 1e12,
            watts=_optional_float(record.get("watts")),
            source=record["source"],
            device_kind=(record.get("device_kind") or "").strip() or None,
        )

    def for_device_kind(self, device_kind: str) -> Hardware | None:
        """The row whose `device_kind` pattern (case-insensitive) matches JAX's `device.device_kind` (e.g.
        "NVIDIA H100 80GB HBM3"), None when no row matches (a CPU, an unlisted card); several matches are an
        error."""
        matches = [
            r for r in self._rows.values() if r.device_kind and re.search(r.device_kind, device_kind, re.IGNORECASE)
        ]
        if len(matches) > 1:
            raise ValueError(
                f"device_kind={device_kind!r} matches several hardware rows {[r.name for r in matches]}; "
                "expected at most one (make the rows' device_kind patterns exclusive)"
            )
        return matches[0] if matches else None


class RegionTable(_Table[Region]):
    """Grid regions by `provider:region` name. CSV columns: `region,gco2e_per_kwh,pue,source`."""

    _kind = "region"
    _shipped_file = "regions.csv"

    @staticmethod
    def _row_from_csv(record: dict[str, str]) -> Region:
        return Region(
            record["region"],
            gco2e_per_kwh=float(record["gco2e_per_kwh"]),
            pue=_optional_float(record.get("pue")),
            source=record["source"],
        )


@functools.cache
def _shipped(cls: type) -> _Table:
    # Cached once per class; the table is immutable, so sharing it shares no state.
    with importlib.resources.files("flopmeter").joinpath("data", cls._shipped_file).open() as handle:
        return cls(cls._row_from_csv(record) for record in csv.DictReader(handle))


def hardware(name: str, *, table: HardwareTable | None = None) -> Hardware:
    """Look up a chip by name in `table` (default: the shipped table)."""
    return (HardwareTable.shipped() if table is None else table)[name]


def region(name: str, *, table: RegionTable | None = None) -> Region:
    """Look up a region by name (`provider:region`, e.g. `gcp:europe-west1`) in `table` (default: shipped)."""
    return (RegionTable.shipped() if table is None else table)[name]

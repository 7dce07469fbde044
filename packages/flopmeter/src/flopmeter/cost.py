"""The `Cost` record returned by `flopmeter.measure`: figures, provenance, notes, table and JSON forms."""

import dataclasses
import json


def _si(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    for factor, prefix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}"


@dataclasses.dataclass(frozen=True)
class Cost:
    """FLOP/memory cost of one call of a compiled function.

    Conventions a caller must know:
    - `flops` follows XLA: a multiply-add is 2 FLOPs; it is the whole program summed over all `num_devices`
      devices. `flops_per_device` is what one device executes after SPMD partitioning. `macs = flops / 2`.
    - Loop bodies (`lax.scan`, `fori_loop`) are scaled by their trip counts; `loop_correction_flops` is what
      was added to XLA's own per-device figure for that.
    - `lowered_flops` is XLA's estimate on the program before optimisation and before partitioning (global,
      loop bodies counted once), kept for comparison only.
    - `peak_memory_bytes` is per device: arguments + outputs + temporaries - aliased (donated) buffers.
    - `notes` lists everything that makes a figure uncertain (unknown loop trip counts, custom calls, negative
      counts that were dropped). An empty list means no known caveat applies.
    """

    flops: float
    flops_per_device: float
    macs: float
    transcendentals: float
    bytes_accessed: float
    peak_memory_bytes: int | None
    num_devices: int
    compile_seconds: float
    backend: str
    jax_version: str
    loop_correction_flops: float = 0.0
    lowered_flops: float | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """Plain dict (lists instead of tuples), suitable for `json.dumps`."""
        out = dataclasses.asdict(self)
        out["notes"] = list(self.notes)
        return out

    def to_json(self, **json_kwargs) -> str:
        """JSON object with every field; keyword arguments go to `json.dumps` (e.g. `indent=2`)."""
        return json.dumps(self.to_dict(), **json_kwargs)

    @classmethod
    def from_dict(cls, data: dict) -> "Cost":
        """Inverse of `to_dict`; unknown keys are an error (a misspelt field must not vanish silently)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(
                f"data has unknown Cost fields {sorted(unknown)}; expected a subset of {sorted(names)}"
            )
        values = dict(data)
        values["notes"] = tuple(values.get("notes", ()))
        return cls(**values)

    def table(self) -> str:
        """A two-column, human-readable table (FLOPs and MACs side by side, labelled)."""
        rows = [
            ("FLOPs (2 per multiply-add, all devices)", f"{_si(self.flops, 'FLOP')}  ({self.flops:.6g})"),
            ("MACs (all devices)", f"{_si(self.macs, 'MAC')}  ({self.macs:.6g})"),
            ("FLOPs per device", _si(self.flops_per_device, "FLOP")),
            ("  of which loop-trip correction", _si(self.loop_correction_flops, "FLOP")),
            ("lowered FLOPs (pre-optimisation)", _si(self.lowered_flops, "FLOP")),
            ("transcendentals", _si(self.transcendentals, "")),
            ("bytes accessed", _si(self.bytes_accessed, "B")),
            (
                "peak memory per device",
                _si(None if self.peak_memory_bytes is None else float(self.peak_memory_bytes), "B"),
            ),
            ("devices", str(self.num_devices)),
            ("compile seconds", f"{self.compile_seconds:.3f}"),
            ("backend / jax", f"{self.backend} / {self.jax_version}"),
        ]
        width = max(len(r[0]) for r in rows)
        lines = [f"{label.ljust(width)}  {value}" for label, value in rows]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

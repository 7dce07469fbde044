"""The `Cost` record returned by `flopmeter.measure`: figures, provenance, notes, table and JSON forms."""

import dataclasses
import json

from flopmeter.convention import WHOLE_PROGRAM, FlopCount, check_convention, convention_label


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
      devices (`flops_convention = "whole_program"`). `flops_per_device` is what one device executes after
      SPMD partitioning. `macs = flops / 2`. `flop_count(convention)` states either with its convention.
    - Loop bodies (`lax.scan`, `fori_loop`) are scaled by their trip counts; `loop_correction_flops` is what
      was added to XLA's own per-device figure for that.
    - `lowered_flops` is XLA's estimate on the program before optimisation and before partitioning (global,
      loop bodies counted once), kept for comparison only.
    - `library_flops` (per device) is the part of the count that GPU library calls (cuBLAS GEMMs, cuDNN
      convolutions and attention) account for, counted from their shapes; XLA cannot cost them.
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
    library_flops: float = 0.0
    notes: tuple[str, ...] = ()

    flops_convention = WHOLE_PROGRAM  # what `flops` counts (a class constant, written into to_dict)

    def flop_count(self, convention: str = WHOLE_PROGRAM) -> FlopCount:
        """`flops` (whole program) or `flops_per_device` as a `FlopCount` stating its convention."""
        check_convention(convention)
        return FlopCount(self.flops, WHOLE_PROGRAM, self.num_devices).to(convention)

    def to_dict(self) -> dict:
        """Plain dict (lists instead of tuples), suitable for `json.dumps`."""
        out = dataclasses.asdict(self)
        out["notes"] = list(self.notes)
        out["flops_convention"] = self.flops_convention
        return out

    def to_json(self, **json_kwargs) -> str:
        """JSON object with every field; keyword arguments go to `json.dumps` (e.g. `indent=2`)."""
        return json.dumps(self.to_dict(), **json_kwargs)

    @classmethod
    def from_dict(cls, data: dict) -> "Cost":
        """Inverse of `to_dict`; unknown keys are an error (a misspelt field must not vanish silently)."""
        names = {f.name for f in dataclasses.fields(cls)}
        convention = data.get("flops_convention", WHOLE_PROGRAM)
        if convention != WHOLE_PROGRAM:
            raise ValueError(
                f"data has flops_convention={convention!r}; a Cost's flops are always {WHOLE_PROGRAM!r}"
            )
        data = {k: v for k, v in data.items() if k != "flops_convention"}
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
        scope = convention_label(WHOLE_PROGRAM, self.num_devices)
        rows = [
            (f"FLOPs (2 per multiply-add, {scope})", f"{_si(self.flops, 'FLOP')}  ({self.flops:.6g})"),
            (f"MACs ({scope})", f"{_si(self.macs, 'MAC')}  ({self.macs:.6g})"),
            ("FLOPs per device", _si(self.flops_per_device, "FLOP")),
            ("  of which loop-trip correction", _si(self.loop_correction_flops, "FLOP")),
            ("  of which GPU library calls", _si(self.library_flops, "FLOP")),
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

"""Progress accounting for a run: images/s, ETA, FLOPs spent and an energy/CO2 estimate, and the one progress
line every loop prints::

    step 120/1000 | loss 0.6931 | 812.4 img/s | ETA 0:01:05 | 1.234e+12 FLOPs | 3.1e-06 kgCO2e

FLOPs spent = ``flops_per_step`` (measured once, on the compiled step, with ``flopmeter``) x steps done in this
process and before it. The CO2 estimate is ``flopmeter``'s energy model applied to this run's own wall time:
energy = devices x watts x hours / 1000, kgCO2e = kWh x grid intensity of ``region``. Watts come from the
``hardware`` table (auto-detected for known accelerators) or ``watts``; with neither (e.g. a laptop CPU) the
estimate is None and the line says so rather than guessing.
"""

from __future__ import annotations

import dataclasses
import time

import flopmeter
import jax

__all__ = ["Co2Model", "Progress", "detect_hardware"]

# Substrings of jax's device_kind -> flopmeter hardware table rows.
_KNOWN_HARDWARE = (("H200", "h200-sxm"), ("H100", "h100-sxm"), ("A100", "a100-sxm4"), ("V100", "v100-sxm2"),
                   ("TPU v2", "tpu-v2"), ("TPU v3", "tpu-v3"), ("TPU v4", "tpu-v4"), ("TPU v5 lite", "tpu-v5e"),
                   ("TPU v5p", "tpu-v5p"))


def detect_hardware() -> str | None:
    """The flopmeter hardware-table name of this process's first device, or None when it is not in the table."""
    kind = jax.devices()[0].device_kind
    for needle, name in _KNOWN_HARDWARE:
        if needle.lower() in kind.lower():
            return name
    return None


@dataclasses.dataclass(frozen=True)
class Co2Model:
    """Per-device power and grid intensity for the run's CO2 estimate (see module docstring)."""

    watts: float | None
    gco2e_per_kwh: float | None
    devices: int

    @classmethod
    def resolve(cls, *, hardware: str | None, watts: float | None, region: str, devices: int) -> Co2Model:
        """``watts`` wins over ``hardware``'s table row; unknown ``hardware``/``region`` names raise ValueError
        (flopmeter lists the valid ones)."""
        if watts is not None and not watts > 0:
            raise ValueError(f"watts={watts!r}; expected a power per device > 0 (or None)")
        hardware = hardware or detect_hardware()
        table_watts = None if hardware is None else flopmeter.hardware(hardware).watts  # checks the name too
        watts = table_watts if watts is None else watts
        return cls(watts=watts, gco2e_per_kwh=flopmeter.region(region).gco2e_per_kwh, devices=devices)

    def kwh(self, seconds: float) -> float | None:
        """Energy of ``seconds`` of this run on all its devices (None when the power is unknown)."""
        if self.watts is None:
            return None
        return self.devices * self.watts * seconds / 3600.0 / 1000.0

    def kg_co2e(self, seconds: float) -> float | None:
        kwh = self.kwh(seconds)
        if kwh is None or self.gco2e_per_kwh is None:
            return None
        return kwh * self.gco2e_per_kwh / 1000.0


def _hms(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Tracks throughput since the first timed step (compilation excluded) and formats the progress line."""

    def __init__(self, *, total_steps: int, batch_size: int, start_step: int, flops_per_step: float | None,
                 co2: Co2Model, previous_seconds: float = 0.0, started_at: float | None = None) -> None:
        self.total_steps, self.batch_size = total_steps, batch_size
        self.flops_per_step, self.co2 = flops_per_step, co2
        self.start_step = start_step
        self.previous_seconds = previous_seconds  # wall time of earlier (resumed-from) processes
        self._t0 = time.perf_counter() if started_at is None else started_at  # a time.perf_counter() value
        self._timed_from: tuple[float, int] | None = None
        self._interval_from: tuple[float, int] | None = None

    @property
    def timing(self) -> bool:
        """Whether throughput measurement has started (`mark_compiled` was called)."""
        return self._timed_from is not None

    def mark_compiled(self, step: int) -> None:
        """Call after the first step finished: throughput is measured from here on."""
        self._timed_from = self._interval_from = (time.perf_counter(), step)

    @property
    def seconds(self) -> float:
        """Wall time of this run including earlier processes of the same run."""
        return self.previous_seconds + time.perf_counter() - self._t0

    def images_per_second(self, step: int) -> float | None:
        """Mean throughput since the first (compiled) step, evals and checkpoints included."""
        if self._timed_from is None or step <= self._timed_from[1]:
            return None
        t, s = self._timed_from
        return (step - s) * self.batch_size / (time.perf_counter() - t)

    def _interval_rate(self, step: int) -> float | None:
        if self._interval_from is None or step <= self._interval_from[1]:
            return None
        t, s = self._interval_from
        now = time.perf_counter()
        self._interval_from = (now, step)
        return (step - s) * self.batch_size / (now - t)

    def flops_done(self, step: int) -> float | None:
        return None if self.flops_per_step is None else self.flops_per_step * step

    def record(self, step: int) -> dict[str, float | None]:
        """Throughput over the interval since the previous record, ETA at that rate, FLOPs and CO2 so far."""
        ips = self._interval_rate(step)
        eta = (self.total_steps - step) * self.batch_size / ips if ips else None
        return {
            "images_per_second": ips,
            "eta_seconds": eta,
            "flops": self.flops_done(step),
            "wall_seconds": self.seconds,
            "kg_co2e": self.co2.kg_co2e(self.seconds),
        }

    def line(self, step: int, loss: float | None, r: dict[str, float | None]) -> str:
        """The progress line for ``record(step)``'s result ``r``."""
        parts = [f"step {step}/{self.total_steps}", "loss -" if loss is None else f"loss {loss:.4f}"]
        parts.append("img/s -" if r["images_per_second"] is None else f"{r['images_per_second']:.1f} img/s")
        parts.append("ETA -" if r["eta_seconds"] is None else f"ETA {_hms(r['eta_seconds'])}")
        parts.append("FLOPs n/a" if r["flops"] is None else f"{r['flops']:.3e} FLOPs")
        parts.append("CO2 n/a (set hardware/watts)" if r["kg_co2e"] is None else f"{r['kg_co2e']:.2e} kgCO2e")
        return " | ".join(parts)

"""Which FLOPs a number counts: the whole program over N devices, or what one device executes.

`Cost.flops` is the whole program summed over all devices; XLA's own cost analysis of an SPMD program, and
tools built on it, report per device. The two differ by the device count (32x for a program compiled for 32
chips), so every FLOP figure that is written down should say which it is: `FlopCount` carries the value, the
convention and the device count, converts between the two, and labels itself for tables and plots.
"""

import dataclasses

WHOLE_PROGRAM = "whole_program"
PER_DEVICE = "per_device"
FLOPS_CONVENTIONS = (WHOLE_PROGRAM, PER_DEVICE)


def check_convention(convention: str) -> str:
    """Return `convention` if it is one of `FLOPS_CONVENTIONS`, else raise a ValueError naming them."""
    if convention not in FLOPS_CONVENTIONS:
        raise ValueError(f"flops_convention={convention!r} is invalid; expected one of {FLOPS_CONVENTIONS}")
    return convention


def _si(value: float) -> str:
    for factor, prefix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.4g} {prefix}FLOP"
    return f"{value:.4g} FLOP"


def convention_label(convention: str, num_devices: int) -> str:
    """`"whole program over 8 devices"` or `"per device, 1 of 8"` (`"1 device"` when there is one)."""
    check_convention(convention)
    if num_devices == 1:
        return "whole program, 1 device"
    if convention == WHOLE_PROGRAM:
        return f"whole program over {num_devices} devices"
    return f"per device, 1 of {num_devices}"


@dataclasses.dataclass(frozen=True)
class FlopCount:
    """A FLOP count (2 per multiply-add) stated in a convention, with the device count it refers to.

    Example:
        >>> count = flopmeter.FlopCount(1.5e15, "whole_program", num_devices=32)
        >>> count.to("per_device").flops  # what one of the 32 devices executes
        46875000000000.0
        >>> count.label()
        '1.5 PFLOP (whole program over 32 devices)'
    """

    flops: float | int
    convention: str  # one of FLOPS_CONVENTIONS (checked here, so the error names the choices)
    num_devices: int

    def __post_init__(self) -> None:
        check_convention(self.convention)
        object.__setattr__(self, "flops", float(self.flops))
        if not isinstance(self.num_devices, int) or self.num_devices < 1:
            raise ValueError(f"num_devices={self.num_devices!r} is invalid; expected an integer >= 1")
        if self.flops < 0:
            raise ValueError(f"flops={self.flops!r} is invalid; expected >= 0")

    @property
    def whole_program(self) -> float:
        """The count summed over all devices."""
        return self.flops if self.convention == WHOLE_PROGRAM else self.flops * self.num_devices

    @property
    def per_device(self) -> float:
        """The count one device executes (the whole program divided evenly, as SPMD partitioning does)."""
        return self.flops if self.convention == PER_DEVICE else self.flops / self.num_devices

    def to(self, convention: str, *, num_devices: int | None = None) -> "FlopCount":
        """The same work in `convention`; `num_devices` re-spreads the whole program over another count
        (e.g. to place a 1-device measurement on an axis of per-device counts over 32 chips)."""
        check_convention(convention)
        devices = self.num_devices if num_devices is None else num_devices
        total = self.whole_program
        return FlopCount(total if convention == WHOLE_PROGRAM else total / devices, convention, devices)

    def label(self) -> str:
        """Human-readable value and convention, e.g. `'1.5 PFLOP (whole program over 32 devices)'`."""
        return f"{_si(self.flops)} ({convention_label(self.convention, self.num_devices)})"

    def to_dict(self, name: str = "flops") -> dict[str, float | str | int]:
        """Columns for a results table or run file: `{name, name_convention, name_devices}`."""
        return {name: self.flops, f"{name}_convention": self.convention, f"{name}_devices": self.num_devices}

    @classmethod
    def from_dict(cls, data: dict, name: str = "flops") -> "FlopCount":
        """Inverse of `to_dict`; a missing convention column is an error, never a guess."""
        missing = [k for k in (name, f"{name}_convention", f"{name}_devices") if k not in data]
        if missing:
            raise ValueError(f"data lacks {missing}; a FLOP figure must state its convention and device count")
        return cls(float(data[name]), data[f"{name}_convention"], int(data[f"{name}_devices"]))

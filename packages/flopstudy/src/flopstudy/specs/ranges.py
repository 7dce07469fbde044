"""The numeric ranges of a sweep's settings, checked when the config loads (before anything runs).

``check_ranges(settings, {"steps": ">=1", "lrs": ">0", "watts": ">0"})`` in a settings dataclass's
``__post_init__``: ValueError ``steps=0: expected an integer >= 1`` naming the first field out of range (its
caller adds where, e.g. ``config.tasks.segmentation``). None passes (an optional field left unset); every entry
of a tuple is checked; every number must be finite (``1e999`` reads as inf).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["check_ranges"]

_RULES = {
    ">0": (lambda v: v > 0, "a finite number > 0"),
    ">=0": (lambda v: v >= 0, "a finite number >= 0"),
    ">=1": (lambda v: v >= 1, "an integer >= 1"),
}


def check_ranges(settings: Any, rules: Mapping[str, str]) -> None:
    """ValueError naming the first field of ``settings`` whose value (or an entry of its tuple) is out of its
    rule's range (module docstring)."""
    for name, rule in rules.items():
        value = getattr(settings, name)
        if value is None:
            continue
        ok, expected = _RULES[rule]
        for entry in value if isinstance(value, tuple) else (value,):
            if isinstance(entry, bool) or not isinstance(entry, int | float):
                continue  # the type checks (sslmethods.pretrain.overrides.check_fields) name a value of another type
            if not math.isfinite(entry) or not ok(entry):
                raise ValueError(f"{name}={value!r}: expected {expected}{' each' if isinstance(value, tuple) else ''}")

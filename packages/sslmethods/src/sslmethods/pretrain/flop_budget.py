"""A FLOP budget as a run length: the one rule by which total pre-training FLOPs become optimizer steps.

``flopwise-pretrain --flops F`` and a sweep's budgets in FLOPs (``config.budget_unit = "flops"``) both use it::

    steps_for_flops(4e11, flops_per_step=3.1e9)   # 129: round(4e11 / 3.1e9), at least 1

The FLOPs per step are those of the compiled step (``PretrainSpec.measure``). The step program does not depend on
the run's length (`run_length`: the schedules read it as data), so it is measured at `MEASURE_STEPS` before the
length is known.
"""

from __future__ import annotations

import math

__all__ = ["MEASURE_STEPS", "steps_for_flops"]

MEASURE_STEPS = 1000  # the run length a FLOP budget's step is measured at: the step program does not depend on it


def steps_for_flops(flops: float, flops_per_step: float) -> int:
    """``round(flops / flops_per_step)`` (Python's ``round``: halves to even), at least 1. ValueError unless both
    are finite numbers > 0."""
    for name, value in (("flops", flops), ("flops_per_step", flops_per_step)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name}={value!r}: expected a finite number > 0")
    return max(1, round(float(flops) / float(flops_per_step)))

"""The NaN guard: a non-finite step stops the run with a message that says where to go from there.

The loop reads each step's metrics (``loss``, and ``finite``: 0.0 when the step itself found a NaN/inf, e.g. in
its gradients) at its host-sync points and hands them here. In ``raise`` mode the first non-finite step raises
`NonFiniteError` naming the step, its metrics and the last good checkpoint, and how to resume from it. In
``skip`` mode the engine has already dropped the update (the state is unchanged); here the skipped steps are
counted, and ``max_consecutive`` non-finite steps in a row (default 10: one bad batch is noise, ten in a row is a
diverged run) stop the run with the same kind of message, so a diverged run cannot spin forever.

Hints name the options as the caller's users spell them (`OptionNames`; a CLI passes its flags).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

__all__ = ["GoodCheckpoint", "NonFiniteError", "NonFiniteGuard", "OptionNames"]


class NonFiniteError(RuntimeError):
    """A step produced a non-finite loss or gradient (or a non-finite state was about to be saved)."""


@dataclasses.dataclass(frozen=True)
class OptionNames:
    """How users of a caller spell the engine's options, for error hints. ``STEP`` in ``resume_from`` is replaced
    by the step to resume from. The defaults are the Python names (`runloop.LoopConfig`, `runloop.open_run`)."""

    skip_nonfinite: str = "on_nonfinite='skip'"
    resume: str = "resume=True"
    resume_from: str = "resume_from=STEP"
    steps: str = "steps"


@dataclasses.dataclass(frozen=True)
class GoodCheckpoint:
    """The checkpoint a hint points to."""

    step: int
    path: str
    loss: float | None


def _metrics_text(metrics: dict[str, float]) -> str:
    shown = {k: v for k, v in metrics.items() if k in ("loss", "grad_norm")} or metrics
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) and math.isfinite(v) else f"{k}={v}"
                     for k, v in sorted(shown.items()) if k != "finite")


class NonFiniteGuard:
    """Checks each step's metrics in order (see the module docstring); counts the skipped steps."""

    def __init__(self, *, skip: bool, max_consecutive: int = 10, names: OptionNames = OptionNames()) -> None:
        self.skip, self.max_consecutive, self.names = skip, max_consecutive, names
        self.consecutive = 0

    def check(self, step: int, metrics: dict[str, float], last_good: Callable[[], GoodCheckpoint | None]) -> bool:
        """``step``: the update this record tried to apply (1-based); ``last_good()`` finds the checkpoint to
        name. Returns True when the update was applied, False when it was skipped; raises NonFiniteError as
        described in the module docstring."""
        if metrics.get("finite", 1.0) >= 1.0:
            self.consecutive = 0
            return True
        if not self.skip:
            raise NonFiniteError(f"non-finite loss or gradient at step {step} ({_metrics_text(metrics)}); "
                                 f"{self._advice(last_good(), with_skip=True)}")
        self.consecutive += 1
        if self.consecutive >= self.max_consecutive:
            raise NonFiniteError(
                f"{self.consecutive} non-finite steps in a row at step {step} ({_metrics_text(metrics)}) with "
                f"{self.names.skip_nonfinite}: the run is not recovering; {self._advice(last_good(), with_skip=False)}")
        return False

    def _advice(self, good: GoodCheckpoint | None, *, with_skip: bool) -> str:
        if good is None:
            where = "no good checkpoint yet. Lower the learning rate or the clipping norm and start again"
        else:
            loss = "" if good.loss is None else f", loss {good.loss:.4g}"
            resume = self.names.resume_from.replace("STEP", str(good.step))
            where = (f"last good checkpoint: {good.path} (step {good.step}{loss}). Lower the learning rate or the "
                     f"clipping norm and continue from it with {self.names.resume} {resume}")
        if with_skip:
            where += (f", or pass {self.names.skip_nonfinite} to drop non-finite updates (at most "
                      f"{self.max_consecutive} in a row)")
        return where


"""Extrapolation checked, not assumed: refit a curve without its largest budget and predict that budget.

For a curve with 3 or more budgets, each form that can be fitted to the others (`curve_laws.MIN_BUDGETS`:
the power law from 2 budgets, the saturating form from 3) is refitted without the largest budget's encoders and
predicts the mean score observed there. The interval is a prediction interval for that observation: the refit's
bootstrap resamples plus the observation's own noise (encoder and seed variance of the held-out encoders, scaled
like the resample). `choose_form` picks, per curve, the checked form with the smallest absolute held-out error
(the power law on a tie, and always with exactly 3 budgets: only it can be refitted from 2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ..results.curves import EncoderPoint
from ..results.rows import CurveKey
from .curve_laws import FORMS, MIN_BUDGETS, NoiseModel, fit_law
from .scaling import percentile_interval

__all__ = ["ExtrapolationCheck", "check_form", "checkable_forms", "choose_form"]


@dataclasses.dataclass(frozen=True)
class ExtrapolationCheck:
    """One form's held-out prediction of one curve's largest budget (module docstring)."""

    key: CurveKey
    form: str
    held_out_flops: float
    predicted: float
    interval: tuple[float, float] | None
    observed: float
    chosen: bool = False

    @property
    def error(self) -> float:
        """Observed minus predicted, in score points."""
        return self.observed - self.predicted

    @property
    def inside(self) -> bool | None:
        """Whether the observation fell inside the interval (None without one)."""
        return None if self.interval is None else self.interval[0] <= self.observed <= self.interval[1]

    def describe(self) -> str:
        ci = "" if self.interval is None else f", 95% interval {self.interval[0]:.1f}-{self.interval[1]:.1f}"
        inside = "" if self.inside is None else ("; inside" if self.inside else "; OUTSIDE")
        return (f"{self.form} law without {self.held_out_flops:.3g} FLOPs predicts {self.predicted:.1f}%{ci}; "
                f"observed {self.observed:.1f}% ({self.error:+.1f} points{inside})")

    def to_json(self) -> dict:
        return {"task": self.key.task, "method": self.key.method, "variant": self.key.variant,
                "backbone": self.key.backbone, "pretrain_dataset": self.key.pretrain_dataset, "form": self.form,
                "held_out_flops": self.held_out_flops, "predicted": self.predicted,
                "interval": None if self.interval is None else list(self.interval), "observed": self.observed,
                "inside": self.inside, "error": self.error, "chosen": self.chosen}


def checkable_forms(budgets: int) -> tuple[str, ...]:
    """The forms that can be refitted without the largest of ``budgets`` distinct budgets."""
    return tuple(f for f in FORMS if budgets - 1 >= MIN_BUDGETS[f])


def check_form(key: CurveKey, points: Sequence[EncoderPoint], form: str, noise: NoiseModel, *, n_boot: int,
               rng: np.random.Generator, level: float = 0.95) -> ExtrapolationCheck:
    """``form`` refitted on ``points`` without the largest budget, against what that budget observed."""
    top = max(p.flops for p in points)
    rest = [p for p in points if p.flops < top]
    held = [p for p in points if p.flops == top]
    law = fit_law(rest, form, noise, n_boot=n_boot, rng=rng)
    observed = float(np.mean([p.mean for p in held]))
    interval = None
    if len(law.samples):
        # The observation is the mean over the held-out encoders: its variance is their mean variance / count.
        obs_var = float(np.mean(noise.variance(np.array([p.n for p in held], np.float64)))) / len(held)
        draws = law.predict_samples(top)[:, 0] + rng.standard_normal(law.scales.size) * np.sqrt(law.scales * obs_var)
        interval = percentile_interval(draws, level)
    return ExtrapolationCheck(key, form, top, law.predict(top), interval, observed)


def choose_form(checks: Sequence[ExtrapolationCheck]) -> str:
    """The checked form with the smallest absolute held-out error; the power law without checks or on a tie."""
    if not checks:
        return "power"
    return min(checks, key=lambda c: (abs(c.error), FORMS.index(c.form))).form  # FORMS: simplest first

"""Everything the report and the planner derive from the results table, computed once.

    analysis = analyse(loaded.rows, convention="whole-program")
    analysis.panels      # per (pre-training dataset, task): curves, scratch baselines, efficiency front
    analysis.fits        # per curve: its law (power or saturating, chosen by held-out error), bootstrap, checks
    analysis.noise       # per task: seed and encoder variance behind every interval
    analysis.crossovers  # per (method, variant, dataset, task): where the next larger backbone's curve crosses
    analysis.saturation  # per pre-training setup and task: e_DS = k * e_US ** a + e_IR on the upper frontier
    analysis.reach       # per curve: FLOPs to reach ``reach_fraction`` of the panel's best score
    analysis.upstream    # per backbone family: upstream loss law and compute-optimal frontier
    analysis.verdicts    # per point with confirm seeds: vs scratch, Welch t-test, Holm (`flopstudy.analysis.verdicts`)
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from ..fits.crossover import Crossover, fit_crossover
from ..fits.curve_laws import CurveLaw, NoiseModel, estimate_noise, fit_law, stream
from ..fits.extrapolation import ExtrapolationCheck, check_form, checkable_forms, choose_form
from ..fits.saturation import FrontierSaturation, SaturationFit, fit_frontier_saturation
from ..fits.upstream import UpstreamLaw, backbone_family, fit_upstream_laws
from ..results.curves import Baseline, Curve, apply_flop_convention, build_curves, size_ranks
from ..results.loaded import Problem
from ..results.rows import SCORE_RANGE, CurveKey, ResultRow
from .efficiency import FrontPoint, Reach, efficiency_front, flops_to_reach
from .verdicts import Verdict, compare_to_scratch

__all__ = ["Analysis", "CurveFit", "Panel", "SaturationResult", "analyse", "fit_curves"]


@dataclasses.dataclass(frozen=True)
class CurveFit:
    """The law of one curve (None when it cannot be fitted, with the reason in ``note``) and its extrapolation
    checks, one per form that could be checked (the chosen form's has ``chosen``)."""

    curve: Curve
    law: CurveLaw | None
    checks: tuple[ExtrapolationCheck, ...]
    note: str

    @property
    def key(self) -> CurveKey:
        return self.curve.key

    @property
    def check(self) -> ExtrapolationCheck | None:
        """The chosen form's held-out check (None below 3 budgets)."""
        return next((c for c in self.checks if c.chosen), None)

    def score(self, flops: float) -> float:
        """Predicted score (%) at ``flops``, clipped to the score's range (a law extrapolated far enough
        predicts scores no metric can take)."""
        return _clip(self.law.predict(flops))

    def score_interval(self, flops: float) -> tuple[float, float] | None:
        """The law's interval of the score at ``flops``, clipped to the score's range like `score`."""
        interval = self.law.predict_interval(flops)
        return None if interval is None else (_clip(interval[0]), _clip(interval[1]))


def _clip(score: float) -> float:
    return float(min(max(score, SCORE_RANGE[0]), SCORE_RANGE[1]))


@dataclasses.dataclass(frozen=True)
class Panel:
    """One (pre-training dataset, task): its curves, the task's scratch baselines and the efficiency front."""

    pretrain_dataset: str
    task: str
    curves: tuple[Curve, ...]
    baselines: tuple[Baseline, ...]
    front: tuple[FrontPoint, ...]

    @property
    def best_score(self) -> float | None:
        scores = [p.median for c in self.curves for p in c.points] + [b.point.median for b in self.baselines]
        return max(scores) if scores else None


@dataclasses.dataclass(frozen=True)
class SaturationResult:
    """The saturation fit of one pre-training setup (task, method, variant, pre-training dataset and backbone
    family: its encoders vary in size and budget) on its upper frontier (`saturation.fit_frontier_saturation`).
    ``upstream_error`` / ``downstream_error``: every encoder's errors in % (one point per encoder: its
    upstream accuracy, the mean of its seeds); ``frontier``: the indices on the upper frontier; ``upstream_source``:
    where the upstream accuracies come from ("heldout", "knn", mixed or unrecorded)."""

    task: str
    pretrain_dataset: str
    method: str
    variant: str
    family: str
    upstream_error: tuple[float, ...]
    downstream_error: tuple[float, ...]
    frontier: tuple[int, ...]
    upstream_source: str
    result: FrontierSaturation

    @property
    def fit(self) -> SaturationFit | None:
        return self.result.fit

    @property
    def note(self) -> str:
        return self.result.note

    @property
    def label(self) -> str:
        variant = f" ({self.variant})" if self.variant else ""
        return f"{self.method}{variant} {self.family} on {self.pretrain_dataset or '-'} -> {self.task}"

    def to_json(self) -> dict:
        return {"task": self.task, "pretrain_dataset": self.pretrain_dataset, "method": self.method,
                "variant": self.variant, "family": self.family, "upstream_source": self.upstream_source,
                "note": self.note, "fit": None if self.fit is None else self.fit.to_json(),
                **{k: v for k, v in self.result.to_json().items() if k not in ("fit", "note")}}


@dataclasses.dataclass(frozen=True)
class Analysis:
    """See the module docstring. ``rows`` are the rows analysed (FLOPs in ``convention``)."""

    rows: tuple[ResultRow, ...]
    convention: str
    panels: tuple[Panel, ...]
    fits: dict[CurveKey, CurveFit]
    noise: dict[str, NoiseModel]
    crossovers: tuple[Crossover, ...]
    saturation: tuple[SaturationResult, ...]
    reach: tuple[Reach, ...]
    reach_fraction: float
    upstream: tuple[UpstreamLaw, ...]
    size_rank: dict[str, int]
    problems: tuple[Problem, ...]
    not_done: dict[str, int]
    verdicts: tuple[Verdict, ...] = ()
    alpha: float = 0.05

    @property
    def tasks(self) -> list[str]:
        return sorted({p.task for p in self.panels})

    @property
    def extrapolation_checks(self) -> list[ExtrapolationCheck]:
        return [c for fit in self.fits.values() for c in fit.checks]

    def baselines(self, task: str) -> list[Baseline]:
        """The task's from-scratch baselines, one per backbone."""
        return list({b.backbone: b for p in self.panels if p.task == task for b in p.baselines}.values())


def _provisional(points: list, key: CurveKey) -> tuple[CurveLaw | None, str]:
    """The form chosen by held-out error under equal weights, fitted so, to estimate the task's noise (None and
    why when it cannot be fitted)."""
    even = NoiseModel(None, 0, 1.0, 0)
    forms = checkable_forms(len({p.flops for p in points}))
    checks = []
    for form in forms if len(forms) > 1 else ():  # one candidate needs no check to be chosen
        try:
            checks.append(check_form(key, points, form, even, n_boot=0, rng=stream(0)))
        except ValueError:
            continue
    form = choose_form(checks)
    try:
        return fit_law(points, form, even, n_boot=0, rng=stream(0)), ""
    except ValueError as e:
        return None, str(e)


def fit_curves(curves: Sequence[Curve], *, n_boot: int = 1000,
               seed: int = 0) -> tuple[dict[CurveKey, CurveFit], NoiseModel]:
    """The laws of one task's ``curves``, pooling their noise: each curve's form is chosen by held-out error
    under equal weights, the task's `NoiseModel` is estimated from those fits, then every curve is checked and
    fitted again with that model's weights and ``n_boot`` bootstrap resamples from its own stream of ``seed``."""
    first = {}
    for curve in curves:
        points = curve.encoders
        if len({p.flops for p in points}) < 2:
            first[curve.key] = (points, None, "one budget measured: no law")
        else:
            first[curve.key] = (points, *_provisional(points, curve.key))
    noise = estimate_noise([(points, [law.predict(p.flops) for p in points], len(law.params))
                            for points, law, _ in first.values() if law is not None])
    fits = {}
    for curve in curves:
        points, provisional, note = first[curve.key]
        if provisional is None:
            fits[curve.key] = CurveFit(curve, None, (), note)
            continue
        checks = []
        for form in checkable_forms(len({p.flops for p in points})):
            try:
                checks.append(check_form(curve.key, points, form, noise, n_boot=n_boot,
                                         rng=stream(seed, *curve.key, form, "check")))
            except ValueError as e:
                note = f"{form} form without the largest budget: {e}"
        form = choose_form(checks)
        try:
            law = fit_law(points, form, noise, n_boot=n_boot, rng=stream(seed, *curve.key, form, "fit"))
        except ValueError as e:  # the saturating form failed on all budgets: the power law, said so
            note, form = f"{form} form on every budget: {e}; the power law instead", "power"
            law = fit_law(points, form, noise, n_boot=n_boot, rng=stream(seed, *curve.key, form, "fit"))
        checks = [dataclasses.replace(c, chosen=c.form == form) for c in checks]
        fits[curve.key] = CurveFit(curve, law, tuple(checks), note)
    return fits, noise


def _crossovers(fits: dict[CurveKey, CurveFit], rank: dict[str, int]) -> list[Crossover]:
    families = defaultdict(list)
    for key, fit in fits.items():
        if fit.law is not None:
            families[(key.method, key.variant, key.pretrain_dataset, key.task)].append(fit)
    out = []
    for (_, _, dataset, task), group in sorted(families.items()):
        group.sort(key=lambda f: rank[f.key.backbone])
        for small, large in zip(group, group[1:], strict=False):
            context = f"{small.key.label} on {dataset or '-'} -> {task}"
            out.append(fit_crossover(small.law, large.law, names=(small.key.backbone, large.key.backbone),
                                     context=context, task=task))
    return out


def _encoder_scores(rows: Sequence[ResultRow]) -> list[float]:
    """An encoder's downstream observation: its confirm seeds where the table marks some (``seed_role``), else
    every seed it has."""
    roles = [getattr(r, "seed_role", None) or r.extras.get("seed_role") for r in rows]
    confirm = [r.score for r, role in zip(rows, roles, strict=True) if role == "confirm"]
    return confirm or [r.score for r in rows]


def _saturation(rows: Sequence[ResultRow], n_boot: int, seed: int) -> list[SaturationResult]:
    setups: dict[tuple, dict[tuple, list[ResultRow]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.done and r.pretrain_flops and r.upstream_accuracy is not None:
            setup = (r.task, r.method, r.variant, r.pretrain_dataset, backbone_family(r.backbone))
            setups[setup][(r.backbone, r.pretrain_steps, r.pretrain_flops)].append(r)
    out = []
    for (task, method, variant, dataset, family), encoders in sorted(setups.items()):
        groups = [encoders[k] for k in sorted(encoders, key=lambda k: (k[0], k[1] or 0, k[2]))]
        upstream = np.array([np.mean([r.upstream_accuracy for r in g]) for g in groups], np.float64)
        result = fit_frontier_saturation(upstream, [_encoder_scores(g) for g in groups], n_boot=n_boot, seed=seed)
        sources = sorted({r.upstream_accuracy_source or "unrecorded" for g in groups for r in g})
        out.append(SaturationResult(task, dataset, method, variant, family,
                                    tuple((100.0 - upstream).tolist()),
                                    tuple(100.0 - d for d in result.downstream_accuracy), result.frontier,
                                    "/".join(sources), result))
    return out


def analyse(rows: Sequence[ResultRow], *, convention: str = "whole-program", reach_fraction: float = 0.9,
            n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> Analysis:
    """Analyses ``rows`` (rows not 'done' are counted in ``not_done`` and left out). ``reach_fraction``: the
    "FLOPs to reach X% of the best" target as a fraction (0-1]; ``seed`` is the root of every bootstrap (each
    curve draws from its own stream, `curve_laws.stream`); ``alpha``: the verdicts' level (Holm-adjusted p
    below it: significant)."""
    if not 0 < reach_fraction <= 1:
        raise ValueError(f"reach_fraction={reach_fraction!r}: expected a fraction in (0, 1]")
    rows, problems = apply_flop_convention(rows, convention)
    curves, baselines, curve_problems = build_curves(rows)
    problems += curve_problems
    rank = size_ranks(rows)
    panels = []
    for dataset, task in sorted({(c.key.pretrain_dataset, c.key.task) for c in curves}
                                | {("", b.task) for b in baselines if not any(c.key.task == b.task for c in curves)}):
        mine = tuple(c for c in curves if (c.key.pretrain_dataset, c.key.task) == (dataset, task))
        base = tuple(b for b in baselines if b.task == task)
        panels.append(Panel(dataset, task, mine, base, tuple(efficiency_front(mine, base))))
    fits, noise = {}, {}
    for task in sorted({c.key.task for c in curves}):
        fits_of_task, noise[task] = fit_curves([c for c in curves if c.key.task == task], n_boot=n_boot,
                                                seed=seed)
        fits |= fits_of_task
    reach = []
    for panel in panels:
        best = panel.best_score
        reach += [flops_to_reach(c, reach_fraction * best) for c in panel.curves]
    return Analysis(
        rows=tuple(rows), convention=convention, panels=tuple(panels), fits=fits, noise=noise,
        crossovers=tuple(_crossovers(fits, rank)), saturation=tuple(_saturation(rows, n_boot, seed)),
        reach=tuple(reach), reach_fraction=reach_fraction,
        upstream=tuple(fit_upstream_laws(rows, n_boot=n_boot, seed=seed)), size_rank=rank,
        problems=tuple(problems), not_done=dict(Counter(r.status for r in rows if not r.done)),
        verdicts=compare_to_scratch(rows, alpha=alpha), alpha=alpha,
    )

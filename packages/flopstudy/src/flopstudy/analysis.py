"""Everything the report and the planner derive from the results table, computed once.

    analysis = analyse(loaded.rows, convention="whole-program")
    analysis.panels      # per (pre-training dataset, task): curves, scratch baselines, efficiency front
    analysis.fits        # per curve: downstream error = A * FLOPs ** b (log-log, R^2, bootstrap)
    analysis.crossovers  # per (method, variant, dataset, task): where the next larger backbone overtakes
    analysis.saturation  # per (task, dataset): e_DS = k * e_US ** a + e_IR across runs
    analysis.reach       # per curve: FLOPs to reach ``reach_fraction`` of the panel's best score
    analysis.upstream    # per backbone family: upstream loss law and compute-optimal frontier
    analysis.verdicts    # per point with confirm seeds: vs scratch, Welch t-test, Holm (`flopstudy.verdicts`)
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from .crossover import Crossover, fit_crossover
from .curves import Baseline, Curve, apply_flop_convention, build_curves, size_ranks
from .efficiency import FrontPoint, Reach, efficiency_front, flops_to_reach
from .loaded_results import Problem
from .results import CurveKey, ResultRow
from .saturation import MIN_POINTS, SaturationFit, fit_saturation
from .scaling import ScalingFit, fit_power_law
from .upstream import UpstreamLaw, fit_upstream_laws
from .verdicts import Verdict, compare_to_scratch

__all__ = ["Analysis", "CurveFit", "Panel", "SaturationResult", "analyse"]


@dataclasses.dataclass(frozen=True)
class CurveFit:
    """The error power law of one curve (None when it cannot be fitted, with the reason in ``note``)."""

    curve: Curve
    fit: ScalingFit | None
    note: str

    @property
    def key(self) -> CurveKey:
        return self.curve.key

    def score(self, flops: float) -> float:
        """Predicted score (%) at ``flops``: 100 - fitted error."""
        return 100.0 - self.fit.predict(flops)

    def score_interval(self, flops: float) -> tuple[float, float] | None:
        interval = self.fit.predict_interval(flops)
        return None if interval is None else (100.0 - interval[1], 100.0 - interval[0])


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
    """The saturation fit of one (task, pre-training dataset), and the (upstream, downstream) error points."""

    task: str
    pretrain_dataset: str
    upstream_error: tuple[float, ...]
    downstream_error: tuple[float, ...]
    fit: SaturationFit | None
    note: str


@dataclasses.dataclass(frozen=True)
class Analysis:
    """See the module docstring. ``rows`` are the rows analysed (FLOPs in ``convention``)."""

    rows: tuple[ResultRow, ...]
    convention: str
    panels: tuple[Panel, ...]
    fits: dict[CurveKey, CurveFit]
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

    def baselines(self, task: str) -> list[Baseline]:
        """The task's from-scratch baselines, one per backbone."""
        return list({b.backbone: b for p in self.panels if p.task == task for b in p.baselines}.values())


def _curve_fit(curve: Curve, n_boot: int, seed: int) -> CurveFit:
    flops = np.array([r.pretrain_flops for r in curve.rows], np.float64)
    error = 100.0 - np.array([r.score for r in curve.rows], np.float64)
    if np.unique(flops).size < 2:
        return CurveFit(curve, None, "one budget measured: no power law")
    if np.any(error <= 0):
        return CurveFit(curve, None, "a score of 100%: error 0 has no logarithm")
    return CurveFit(curve, fit_power_law(flops, error, n_boot=n_boot, seed=seed), "")


def _crossovers(fits: dict[CurveKey, CurveFit], rank: dict[str, int]) -> list[Crossover]:
    families = defaultdict(list)
    for key, fit in fits.items():
        if fit.fit is not None:
            families[(key.method, key.variant, key.pretrain_dataset, key.task)].append(fit)
    out = []
    for (_, _, dataset, task), group in sorted(families.items()):
        group.sort(key=lambda f: rank[f.key.backbone])
        for small, large in zip(group, group[1:], strict=False):
            context = f"{small.key.label} on {dataset or '-'} -> {task}"
            out.append(fit_crossover(small.fit, large.fit, names=(small.key.backbone, large.key.backbone),
                                     context=context))
    return out


def _saturation(rows: Sequence[ResultRow], n_boot: int, seed: int) -> list[SaturationResult]:
    groups = defaultdict(list)
    for r in rows:
        if r.done and r.pretrain_flops and r.upstream_accuracy is not None:
            groups[(r.task, r.pretrain_dataset)].append((100.0 - r.upstream_accuracy, 100.0 - r.score))
    out = []
    for (task, dataset), pairs in sorted(groups.items()):
        u, d = (np.array(v, np.float64) for v in zip(*pairs, strict=True))
        fit, note = None, ""
        if u.size < MIN_POINTS or np.unique(u).size < 2:
            note = f"{u.size} run(s) with upstream accuracy: need {MIN_POINTS} with 2 distinct upstream errors"
        elif np.any(u <= 0):
            note = "an upstream accuracy of 100%: upstream error 0 cannot be raised to a power"
        else:
            fit = fit_saturation(u, d, n_boot=n_boot, seed=seed)
        out.append(SaturationResult(task, dataset, tuple(u.tolist()), tuple(d.tolist()), fit, note))
    return out


def analyse(rows: Sequence[ResultRow], *, convention: str = "whole-program", reach_fraction: float = 0.9,
            n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> Analysis:
    """Analyses ``rows`` (rows not 'done' are counted in ``not_done`` and left out). ``reach_fraction``: the
    "FLOPs to reach X% of the best" target as a fraction (0-1]; ``seed`` drives every bootstrap; ``alpha``: the
    verdicts' level (Holm-adjusted p below it: significant)."""
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
    fits = {c.key: _curve_fit(c, n_boot, seed) for c in curves}
    reach = []
    for panel in panels:
        best = panel.best_score
        reach += [flops_to_reach(c, reach_fraction * best) for c in panel.curves]
    return Analysis(
        rows=tuple(rows), convention=convention, panels=tuple(panels), fits=fits,
        crossovers=tuple(_crossovers(fits, rank)), saturation=tuple(_saturation(rows, n_boot, seed)),
        reach=tuple(reach), reach_fraction=reach_fraction,
        upstream=tuple(fit_upstream_laws(rows, n_boot=n_boot, seed=seed)), size_rank=rank,
        problems=tuple(problems), not_done=dict(Counter(r.status for r in rows if not r.done)),
        verdicts=compare_to_scratch(rows, alpha=alpha), alpha=alpha,
    )

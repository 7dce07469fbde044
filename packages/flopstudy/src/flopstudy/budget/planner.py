"""The budget planner: the best (method, backbone, steps) for a budget, from the fitted error-vs-FLOPs curves.

    analysis = analyse(load_results(["runs/sweep"]).rows)
    result = plan(analysis, parse_budget("3e18"), hardware_name="tpu-v3", chips=32, region_name="gcp:europe-west1")
    print(result.describe())

Every curve with a fit is a candidate; the budget is turned into that candidate's pre-training FLOPs (a FLOP
budget as is; device-hours and kgCO2e through the hardware's time model, so a cheaper step buys more FLOPs), its
law predicts the score with a bootstrap interval, and candidates are ranked by predicted score. A budget outside a
candidate's measured FLOPs is flagged with the distance ("3.2x beyond the largest measured budget"), and the best
option says how far it lies beyond the last validated budget (the largest, predicted by the held-out check of
`flopstudy.fits.extrapolation`) and the held-out error there. Options more than `MAX_EXTRAPOLATION` (10x) outside
their measured range are not ranked unless ``allow_extrapolation``: `plan` raises instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import flopmeter

from ..analysis.study import Analysis, CurveFit
from ..fits.extrapolation import ExtrapolationCheck
from ..results.rows import CurveKey
from .cost import Budget, RunCost, Throughput, budget_flops, run_cost, throughput_model

__all__ = ["MAX_EXTRAPOLATION", "Option", "Plan", "plan", "rank_options", "task_of"]

MAX_EXTRAPOLATION = 10.0  # the most a ranked option may lie outside its measured FLOPs, as a factor


@dataclasses.dataclass(frozen=True)
class Option:
    """One candidate at the budget: its FLOPs, steps, predicted score (%) and interval, and where that is an
    extrapolation (None inside the measured range)."""

    key: CurveKey
    flops: float
    steps: float | None
    score: float
    interval: tuple[float, float] | None
    extrapolation: str | None
    factor_outside: float = 1.0
    check: ExtrapolationCheck | None = None
    cost: RunCost | None = None

    def describe(self, metric: str = "score") -> str:
        steps = "" if self.steps is None else f" for ~{self.steps:,.0f} steps"
        ci = "" if self.interval is None else f" (95% interval {self.interval[0]:.1f}-{self.interval[1]:.1f})"
        return (f"pre-train {self.key.label} {self.key.backbone} on {self.key.pretrain_dataset}{steps} "
                f"({self.flops:.3g} FLOPs): expected {self.score:.1f}% {metric}{ci}")

    def validation(self) -> str:
        """How far the prediction lies from the last validated budget, and the held-out error there."""
        if self.check is None:
            return "not validated: the curve has fewer than 3 budgets, so no held-out check"
        c = self.check
        inside = "" if c.inside is None else (", inside its interval" if c.inside else ", outside its interval")
        held = (f"the {c.form} law fitted without {c.held_out_flops:.3g} FLOPs missed it by {c.error:+.1f} points"
                f"{inside}")
        if self.flops > c.held_out_flops * (1 + 1e-9):
            return (f"{self.flops / c.held_out_flops:.3g}x beyond the last validated budget "
                    f"({c.held_out_flops:.3g} FLOPs), where {held}")
        return f"within the validated range (up to {c.held_out_flops:.3g} FLOPs, where {held})"


def rank_options(fits: Sequence[CurveFit], flops_for: Callable[[CurveFit], float]) -> list[Option]:
    """Fitted curves evaluated at ``flops_for(curve)``, best predicted score first."""
    options = []
    for fit in fits:
        if fit.law is None:
            continue
        flops = flops_for(fit)
        per_step = fit.curve.flops_per_step
        options.append(Option(fit.key, flops, None if per_step is None else flops / per_step, fit.score(flops),
                              fit.score_interval(flops), fit.law.extrapolation(flops),
                              fit.law.factor_outside(flops), fit.check))
    return sorted(options, key=lambda o: -o.score)


def task_of(analysis: Analysis, task: str | None) -> str:
    """``task`` if the results hold it; the only task when None; ValueError naming the choices otherwise."""
    tasks = analysis.tasks
    if task is None and len(tasks) == 1:
        return tasks[0]
    if task not in tasks:
        raise ValueError(f"--task {task!r}: expected one of {tasks}")
    return task


@dataclasses.dataclass(frozen=True)
class Plan:
    """The ranked options for one budget and task, the time model used, and warnings."""

    budget: Budget
    task: str
    metric: str
    options: tuple[Option, ...]
    throughput: Throughput
    scratch: float | None
    warnings: tuple[str, ...]

    @property
    def best(self) -> Option:
        return self.options[0]

    def describe(self, top: int = 3) -> str:
        lines = [f"budget {self.budget.describe()} on {self.throughput.chips} x {self.throughput.hardware}, "
                 f"task {self.task}",
                 f"best: {self.best.describe(self.metric)}",
                 f"  validation: {self.best.validation()}"]
        if self.best.cost is not None:
            lines.append(f"  cost: {self.best.cost.describe()}")
        lines.append(f"  time model: {self.throughput.describe()}")
        if self.scratch is not None:
            lines.append(f"  from scratch (no pre-training): {self.scratch:.1f}% {self.metric}")
        inside = [o for o in self.options if o.extrapolation is None]
        if self.best.extrapolation is not None and inside:
            lines.append(f"best inside its measured range: {inside[0].describe(self.metric)}")
        for option in self.options[1:top]:
            lines.append(f"next: {option.describe(self.metric)}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def plan(analysis: Analysis, budget: Budget, *, task: str | None = None, pretrain_dataset: str | None = None,
         hardware_name: str = flopmeter.STUDY_HARDWARE, chips: int = flopmeter.STUDY_CHIPS,
         region_name: str = flopmeter.STUDY_REGION, mfu: float = 0.4,
         use_pue: bool = False, allow_extrapolation: bool = False) -> Plan:
    """The ranked options for ``budget`` (module docstring). ValueError when no curve of the task can be
    fitted (each needs 2 budgets), when an option lies more than `MAX_EXTRAPOLATION` outside its measured range
    (unless ``allow_extrapolation``), or for an unknown task, dataset, hardware or region."""
    if analysis.convention != "whole-program":
        raise ValueError(f"analysis.convention={analysis.convention!r}: the planner needs whole-program FLOPs "
                         "(the hardware time model counts every device's work)")
    task = task_of(analysis, task)
    throughput = throughput_model(analysis.rows, hardware_name=hardware_name, chips=chips, mfu=mfu)
    fits = [f for f in analysis.fits.values() if f.key.task == task]
    if pretrain_dataset is not None:
        datasets = sorted({f.key.pretrain_dataset for f in fits})
        if pretrain_dataset not in datasets:
            raise ValueError(f"--pretrain-dataset {pretrain_dataset!r}: expected one of {datasets}")
        fits = [f for f in fits if f.key.pretrain_dataset == pretrain_dataset]

    def flops_for(fit: CurveFit) -> float:
        return budget_flops(budget, throughput, flops_per_step=fit.curve.flops_per_step, region_name=region_name,
                            use_pue=use_pue)

    options = rank_options(fits, flops_for)
    if not options:
        raise ValueError(f"no curve of task {task!r} can be fitted: each needs runs at 2 or more pre-training "
                         "budgets with known FLOPs")
    far = max(options, key=lambda o: o.factor_outside)
    if far.factor_outside > MAX_EXTRAPOLATION and not allow_extrapolation:
        raise ValueError(f"--budget {budget.describe()}: {far.key.label} {far.key.backbone} would be extrapolated "
                         f"{far.extrapolation}, more than {MAX_EXTRAPOLATION:g}x outside its measured range; pass "
                         "--allow-extrapolation to rank such options anyway")
    best = options[0]
    if best.steps is not None:
        per_step = best.flops / best.steps
        options[0] = dataclasses.replace(best, cost=run_cost(throughput, flops_per_step=per_step, steps=best.steps,
                                                             region_name=region_name, use_pue=use_pue))
    warnings = []
    if best.extrapolation is not None:
        warnings.append(f"extrapolation: {best.extrapolation} of {best.key.label} {best.key.backbone}")
    lo = min(f.law.x_min for f in fits if f.law is not None)
    hi = max(f.law.x_max for f in fits if f.law is not None)
    if best.flops > hi * (1 + 1e-9):
        warnings.append(f"the budget is {best.flops / hi:.3g}x beyond the largest measured budget of any run "
                        f"({hi:.3g} FLOPs)")
    elif best.flops < lo * (1 - 1e-9):
        warnings.append(f"the budget is {lo / best.flops:.3g}x below the smallest measured budget of any run "
                        f"({lo:.3g} FLOPs)")
    scratch = [b.point.median for b in analysis.baselines(task)]
    best_scratch = max(scratch) if scratch else None
    if best_scratch is not None and best.score <= best_scratch:
        warnings.append(f"no pre-training is predicted to beat training from scratch ({best_scratch:.1f}%) at this "
                        "budget")
    if best.steps is None:
        warnings.append("steps, time and CO2 unknown: the runs of this curve record no FLOPs per step")
    metric = next((r.score_metric for r in analysis.rows if r.task == task and r.score_metric), "score")
    return Plan(budget, task, metric, tuple(options), throughput, best_scratch, tuple(warnings))

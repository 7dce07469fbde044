"""The plain-language answer: whether pre-trained points beat scratch, from the verdicts (`flopstudy.analysis.verdicts`:
confirm seeds, Welch's t-test, Holm-adjusted); "at budget X, run Y", from the fits, saying where that is an
extrapolation; then the efficiency front, the crossovers (or why there is none) and the saturation estimates in one
sentence each. `headline` holds the verdict and crossover sentences alone, each with a sentence saying why where
there is none (report.json's ``headline``: what a command prints last, in the report's own words)."""

from __future__ import annotations

import math

from ..analysis.study import Analysis
from ..analysis.verdicts import TEST, Verdict
from ..budget.planner import rank_options

__all__ = ["crossover_lines", "headline", "summary_lines", "verdict_lines", "versus_scratch"]


def _budgets(lo: float, hi: float) -> list[float]:
    """The smallest, middle (geometric) and largest measured budgets, and 10x the largest (extrapolated)."""
    return sorted({lo, math.sqrt(lo * hi), hi}) + [10.0 * hi]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _evidence(v: Verdict) -> str:
    """Effect, interval, adjusted p and seed counts of one verdict."""
    if v.effect_interval is None:
        return f"{v.effect:+.2f} points (no seed variance: untested)"
    lo, hi = v.effect_interval
    units = (_plural(v.n_confirm, "confirm seed") if v.n_encoders == 1
             else f"{v.n_confirm} pre-training runs (the mean of each one's confirm seeds)")
    return (f"{v.effect:+.2f} points (95% interval {lo:+.2f} to {hi:+.2f}, adjusted p {v.p_adjusted:.2g}; "
            f"{v.mean:.2f}% on {units} vs {v.baseline_mean:.2f}% on {v.n_baseline})")


def versus_scratch(analysis: Analysis, task: str) -> str | None:
    """Does pre-training beat scratch on ``task``? From the analysis' verdicts: how many compared points beat
    scratch significantly, the best of them (or the largest effect when none does) with effect, 95% interval and
    Holm-adjusted p, and how many are significantly below. None when no point of the task was compared."""
    mine = [v for v in analysis.verdicts if v.task == task]
    if not mine:
        return None
    family = len([v for v in analysis.verdicts if v.p_value is not None])
    head = (f"{task}, pre-trained vs scratch ({TEST} on confirm seeds, Holm-adjusted over the report's "
            f"{_plural(family, 'compared point')}, alpha {analysis.alpha:g}): ")
    better = sorted((v for v in mine if v.significant and v.effect > 0), key=lambda v: -v.effect)
    worse = [v for v in mine if v.significant and v.effect < 0]
    tested = _plural(len(mine), "point")
    if better:
        best = better[0]
        verb = "beats" if len(better) == 1 else "beat"
        line = (f"{head}{len(better)} of {tested} {verb} scratch significantly; the best, {best.name()}, by "
                f"{_evidence(best)}.")
        if len(better) > 1:
            others = "; ".join(f"{v.name()}, {v.effect:+.2f} (adjusted p {v.p_adjusted:.2g})" for v in better[1:])
            line += f" Also significant: {others}."
    else:
        top = max(mine, key=lambda v: v.effect)
        line = (f"{head}no pre-trained point beats scratch significantly ({tested} tested); the largest effect, "
                f"{top.name()}, is {_evidence(top)}.")
    if worse:
        line += f" {_plural(len(worse), 'point')} {'is' if len(worse) == 1 else 'are'} significantly below scratch."
    return line


def verdict_lines(analysis: Analysis) -> list[str]:
    """The verdict sentence of each task with compared points (`versus_scratch`); when no task has one, a sentence
    saying so."""
    lines = [line for line in (versus_scratch(analysis, task) for task in analysis.tasks) if line]
    return lines or ["No verdict vs scratch: no pre-trained point was compared with scratch on confirm seeds (a "
                     "sweep runs them with a scratch baseline and config.confirm_seeds > 0)."]


def crossover_lines(analysis: Analysis) -> list[str]:
    """One sentence per backbone crossover (`flopstudy.fits.crossover`); when there is none, one sentence saying why."""
    if analysis.crossovers:
        return [f"{c.describe()}." for c in analysis.crossovers]
    fitted = sorted({key.backbone for key, fit in analysis.fits.items() if fit.law is not None})
    if not fitted:
        return ["No backbone crossover: no curve has 2 measured budgets to fit."]
    if len(fitted) == 1:
        return [f"No backbone crossover: every fitted curve uses one backbone ({fitted[0]}); a crossover compares "
                "two backbone sizes with the same method and pre-training set."]
    return [f"No backbone crossover: of the fitted backbones ({', '.join(fitted)}), no two share a method, "
            "pre-training set and task."]


def headline(analysis: Analysis) -> dict[str, list[str]]:
    """The sentences a reader needs first: ``verdicts`` (`verdict_lines`) and ``crossovers`` (`crossover_lines`)."""
    return {"verdicts": verdict_lines(analysis), "crossovers": crossover_lines(analysis)}


def summary_lines(analysis: Analysis) -> list[str]:
    """Sentences for the report's summary (Markdown-free plain text)."""
    if not analysis.panels:
        return ["No finished row has a known FLOP count and a score: nothing to plot or fit (see 'Left out')."]
    lines = [line for line in (versus_scratch(analysis, task) for task in analysis.tasks) if line]
    for task in analysis.tasks:
        fits = [f for f in analysis.fits.values() if f.key.task == task and f.law is not None]
        metric = next((r.score_metric for r in analysis.rows if r.task == task and r.score_metric), "score")
        scratch = [b.point.median for b in analysis.baselines(task)]
        best_scratch = max(scratch) if scratch else None
        if not fits:
            lines.append(f"{task}: no curve has 2 measured budgets, so there is nothing to fit or recommend.")
            continue
        lo, hi = min(f.law.x_min for f in fits), max(f.law.x_max for f in fits)
        for budget in _budgets(lo, hi):
            options = rank_options(fits, lambda _f, b=budget: b)
            inside = [o for o in options if o.extrapolation is None]
            best = (inside or options)[0]  # a measured curve over an extrapolated one where there is one
            where = (f"an extrapolation: {best.extrapolation}; {best.validation()}" if best.extrapolation
                     else "within its measured range")
            steps = "" if best.steps is None else f" for ~{best.steps:,.0f} steps"
            ci = "" if best.interval is None else f" (95% interval {best.interval[0]:.1f}-{best.interval[1]:.1f})"
            versus = ""
            if best_scratch is not None:
                versus = (f"; scratch gets {best_scratch:.1f}%" if best.score > best_scratch else
                          f"; no pre-training is predicted to beat scratch ({best_scratch:.1f}%)")
            lines.append(f"{task}, at {budget:.3g} FLOPs: pre-train {best.key.label} {best.key.backbone} on "
                         f"{best.key.pretrain_dataset}{steps}, expected {best.score:.1f}% {metric}{ci}{versus} "
                         f"[{where}].")
    for panel in analysis.panels:
        if panel.front:
            points = ", ".join(f"{p.label} at {p.flops:.3g} FLOPs ({p.score:.1f}%)" for p in panel.front)
            lines.append(f"Efficient (Pareto front, scratch included) for {panel.task} after pre-training on "
                         f"{panel.pretrain_dataset or '-'}: {points}.")
    if any(fit.law is not None for fit in analysis.fits.values()):  # else the lines above said there is no fit
        lines += crossover_lines(analysis)
    for s in analysis.saturation:
        if s.fit is not None:
            ci = s.fit.interval("e_ir")
            interval = "" if ci is None else f" (95% interval {ci[0]:.1f}-{ci[1]:.1f})"
            lines.append(f"Saturation of {s.label} (upper frontier): irreducible downstream error e_IR = "
                         f"{s.fit.e_ir:.1f}%{interval}, i.e. at most {100 - s.fit.e_ir:.1f}% from better upstream "
                         f"accuracy alone ({s.fit.n} frontier encoders).")
    return lines

"""The plain-language answer: whether pre-training beats scratch by more than the noise of fine-tuning seeds;
"at budget X, run Y", from the fits, saying where that is an extrapolation; then the efficiency front, the
crossovers and the saturation estimates in one sentence each."""

from __future__ import annotations

import math

from .analysis import Analysis
from .planner import rank_options

__all__ = ["summary_lines", "versus_scratch"]


def _budgets(lo: float, hi: float) -> list[float]:
    """The smallest, middle (geometric) and largest measured budgets, and 10x the largest (extrapolated)."""
    return sorted({lo, math.sqrt(lo * hi), hi}) + [10.0 * hi]


def versus_scratch(analysis: Analysis, task: str) -> str | None:
    """Is the task's best pre-trained point better than scratch by more than seed noise? The best point by
    median among those with at least two fine-tuning seeds (any point when none has), against the best scratch
    baseline; the noise is the larger of the two seed ranges (max - min). None without a point or a baseline."""
    points = [(curve.key, point) for panel in analysis.panels if panel.task == task for curve in panel.curves
              for point in curve.points]
    baselines = analysis.baselines(task)
    if not points or not baselines:
        return None
    seeded = [(key, point) for key, point in points if point.seeds >= 2] or points
    key, best = max(seeded, key=lambda kp: kp[1].median)
    scratch = max(baselines, key=lambda b: b.point.median).point
    gap, spread = best.median - scratch.median, max(best.high - best.low, scratch.high - scratch.low)
    if min(best.seeds, scratch.seeds) < 2:
        verdict = "with one seed on a side there is no seed spread to judge it by"
    elif gap > spread:
        verdict = f"more than the larger seed range ({spread:.2f}): pre-training helps at these settings"
    elif gap > 0:
        verdict = f"within the larger seed range ({spread:.2f}): not distinguishable from scratch"
    else:
        verdict = "pre-training does not beat scratch at these settings"

    def describe(point) -> str:
        return f"{point.median:.2f}% (median of {point.seeds}, range {point.low:.2f}-{point.high:.2f})"

    return (f"{task}, pre-trained vs scratch: the best pre-trained point, {key.label} {key.backbone} on "
            f"{key.pretrain_dataset} at {best.flops:.3g} FLOPs, {describe(best)} vs scratch {describe(scratch)}: "
            f"{gap:+.2f} points, {verdict}.")


def summary_lines(analysis: Analysis) -> list[str]:
    """Sentences for the report's summary (Markdown-free plain text)."""
    if not analysis.panels:
        return ["No finished row has a known FLOP count and a score: nothing to plot or fit (see 'Left out')."]
    lines = [line for line in (versus_scratch(analysis, task) for task in analysis.tasks) if line]
    for task in analysis.tasks:
        fits = [f for f in analysis.fits.values() if f.key.task == task and f.fit is not None]
        metric = next((r.score_metric for r in analysis.rows if r.task == task and r.score_metric), "score")
        scratch = [b.point.median for b in analysis.baselines(task)]
        best_scratch = max(scratch) if scratch else None
        if not fits:
            lines.append(f"{task}: no curve has 2 measured budgets, so there is nothing to fit or recommend.")
            continue
        lo, hi = min(f.fit.x_min for f in fits), max(f.fit.x_max for f in fits)
        for budget in _budgets(lo, hi):
            options = rank_options(fits, lambda _f, b=budget: b)
            inside = [o for o in options if o.extrapolation is None]
            best = (inside or options)[0]  # a measured curve over an extrapolated one where there is one
            where = ("an extrapolation: " + best.extrapolation) if best.extrapolation else "within its measured range"
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
    lines += [f"{c.describe()}." for c in analysis.crossovers]
    for s in analysis.saturation:
        if s.fit is not None:
            ci = s.fit.interval("e_ir")
            interval = "" if ci is None else f" (95% interval {ci[0]:.1f}-{ci[1]:.1f})"
            lines.append(f"Saturation for {s.task} after pre-training on {s.pretrain_dataset}: irreducible "
                         f"downstream error e_IR = {s.fit.e_ir:.1f}%{interval}, i.e. at most "
                         f"{100 - s.fit.e_ir:.1f}% from better upstream accuracy alone ({s.fit.n} runs).")
    return lines

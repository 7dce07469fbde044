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


def _describe(point) -> str:
    return f"{point.median:.2f}% (median of {point.seeds}, range {point.low:.2f}-{point.high:.2f})"


def _beats(point, scratch) -> bool:
    """Better than scratch by more than the larger of the two seed ranges (max - min over seeds)."""
    return point.median - scratch.median > max(point.high - point.low, scratch.high - scratch.low)


def versus_scratch(analysis: Analysis, task: str) -> str | None:
    """Does pre-training beat scratch by more than seed noise? Judged on the points with at least two fine-tuning
    seeds, against the best scratch baseline: a point beats scratch when its median is higher by more than the
    larger of the two seed ranges (max - min). Says how many do and names the best of them; names the highest
    median too when that one does not. None without a seeded point or a baseline."""
    seeded = [(curve.key, point) for panel in analysis.panels if panel.task == task for curve in panel.curves
              for point in curve.points if point.seeds >= 2]
    baselines = [b for b in analysis.baselines(task) if b.point.seeds >= 2]
    if not seeded or not baselines:
        return None
    scratch = max(baselines, key=lambda b: b.point.median).point

    def name(key, point) -> str:
        return f"{key.label} {key.backbone} on {key.pretrain_dataset} at {point.flops:.3g} FLOPs"

    top_key, top = max(seeded, key=lambda kp: kp[1].median)
    winners = [(key, point) for key, point in seeded if _beats(point, scratch)]
    points = f"{len(seeded)} point{'' if len(seeded) == 1 else 's'}"
    head = f"{task}, pre-trained vs scratch ({_describe(scratch)}), on the {points} with seeds: "
    if not winners:
        verdict = ("within the seed range of scratch" if top.median > scratch.median else "below scratch")
        return (f"{head}none beats scratch by more than the seed range; the highest median, {name(top_key, top)}, "
                f"{_describe(top)}, is {verdict} ({top.median - scratch.median:+.2f} points).")
    key, best = max(winners, key=lambda kp: kp[1].median)
    spread = max(best.high - best.low, scratch.high - scratch.low)
    verb = "beats" if len(winners) == 1 else "beat"
    line = (f"{head}{len(winners)} {verb} scratch by more than the larger seed range; the best, {name(key, best)}, "
            f"{_describe(best)}, by {best.median - scratch.median:+.2f} points (range {spread:.2f}).")
    if (top_key, top) not in winners:
        line += (f" The highest median, {name(top_key, top)}, {_describe(top)}, is within the seed range of "
                 f"scratch ({top.median - scratch.median:+.2f} points).")
    return line


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
    lines += [f"{c.describe()}." for c in analysis.crossovers]
    for s in analysis.saturation:
        if s.fit is not None:
            ci = s.fit.interval("e_ir")
            interval = "" if ci is None else f" (95% interval {ci[0]:.1f}-{ci[1]:.1f})"
            lines.append(f"Saturation of {s.label} (upper frontier): irreducible downstream error e_IR = "
                         f"{s.fit.e_ir:.1f}%{interval}, i.e. at most {100 - s.fit.e_ir:.1f}% from better upstream "
                         f"accuracy alone ({s.fit.n} frontier encoders).")
    return lines

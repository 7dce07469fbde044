"""The report's tables, built from an `Analysis`: the study's Tables 1/2 (method x pre-training dataset at a fixed
budget), the CO2/energy table, FLOPs to reach X% of the best score, the fits (curve laws, crossovers,
saturation, upstream laws), the best layer of each run and MAE pre-pretraining's FLOPs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..analysis.layer_transfer import LayerCurve, best_layer_trend
from ..analysis.prepretrain import ChainSeries
from ..analysis.study import Analysis
from ..budget.cost import Throughput, run_cost
from ..results.rows import ResultRow
from .table_markup import Table, number

__all__ = ["budget_table", "co2_table", "crossover_table", "default_table_budget", "fit_table", "layer_table",
           "prepretrain_table", "reach_table", "saturation_table", "upstream_table"]


def _interval(interval: tuple[float, float] | None, spec: str = ".3g") -> str:
    return "-" if interval is None else f"{interval[0]:{spec}} to {interval[1]:{spec}}"


def _flops_key(flops: float) -> float:
    """Pre-training FLOPs to two significant digits: runs budgeted in FLOPs land within a step of their budget."""
    return float(f"{flops:.2g}")


def default_table_budget(analysis: Analysis, task: str) -> tuple[str, int | float] | None:
    """("steps", n) or ("flops", f): the pre-training length shared by the most methods among the task's finished
    pre-trained rows, counted in steps (a sweep budgeted in steps, like the study) and in FLOPs to two significant
    digits (a sweep budgeted in FLOPs, whose methods run different step counts); steps on a tie."""
    rows = [r for r in analysis.rows if r.done and r.task == task and r.pretrain_flops and r.pretrain_steps]
    if not rows:
        return None
    options = []
    for unit, value_of in (("steps", lambda r: r.pretrain_steps), ("flops", lambda r: _flops_key(r.pretrain_flops))):
        methods: dict[float, set[str]] = {}
        for r in rows:
            methods.setdefault(value_of(r), set()).add(r.method)
        value = max(methods, key=lambda v: (len(methods[v]), v))
        options.append((len(methods[value]), unit == "steps", unit, value))
    _, _, unit, value = max(options)
    return unit, value


def budget_table(analysis: Analysis, task: str, backbone: str, steps: int | None = None, *,
                 flops: float | None = None) -> Table:
    """Median score per method (rows) x pre-training dataset (columns) at ``steps`` pre-training steps, or at
    ``flops`` pre-training FLOPs (to two significant digits); the best variant of a method is shown (named), and
    the best dataset per method is bold (the study's Tables 1/2)."""
    if (steps is None) == (flops is None):
        raise ValueError(f"steps={steps!r}, flops={flops!r}: give exactly one")
    panels = [p for p in analysis.panels if p.task == task]
    datasets = sorted({p.pretrain_dataset for p in panels if p.curves})
    cells: dict[str, dict[str, tuple[float, str]]] = {}
    for panel in panels:
        for curve in panel.curves:
            if curve.key.backbone != backbone:
                continue
            for point in curve.points:
                if (point.steps == steps) if flops is None else (_flops_key(point.flops) == _flops_key(flops)):
                    current = cells.setdefault(curve.key.method, {}).get(panel.pretrain_dataset)
                    if current is None or point.median > current[0]:
                        cells[curve.key.method][panel.pretrain_dataset] = (point.median, curve.key.variant)
    rows, bold = [], set()
    for i, method in enumerate(sorted(cells)):
        row = cells[method]
        best = max(row.values())[0]
        text = [f"{row[d][0]:.1f}" + (f" ({row[d][1]})" if row[d][1] else "") if d in row else "-"
                for d in datasets]
        bold |= {(i, j + 1) for j, d in enumerate(datasets) if d in row and row[d][0] == best}
        rows.append((method, *text))
    budget = f"{steps:,} pre-training steps" if flops is None else f"{_flops_key(flops):.2g} pre-training FLOPs"
    return Table(f"{task}: score (%) by pre-training dataset, {backbone}, {budget}",
                 ("method", *datasets), tuple(rows), "Median over fine-tuning seeds; bold: the best dataset for "
                 "the method; a variant in brackets is the method's best one at this budget.", frozenset(bold))


def co2_table(results: Sequence[ResultRow], throughput: Throughput, region_name: str) -> Table:
    """One line per pre-training run of ``results`` (whole-program FLOPs): FLOPs, the study model's
    time/energy/CO2 (from the table, else estimated with ``throughput``, marked *) and the local measurement
    where recorded."""
    seen, rows, estimated = set(), [], False
    for r in results:
        run = (r.method, r.variant, r.backbone, r.pretrain_dataset, r.pretrain_steps, r.pretrain_flops)
        if not r.pretrain_flops or run in seen:
            continue
        seen.add(run)
        hours, kwh, kg, mark = r.study_hours, r.study_kwh, r.study_kg_co2e, ""
        if (hours is None or kg is None) and r.step_flops and r.pretrain_steps:
            cost = run_cost(throughput, flops_per_step=r.step_flops, steps=float(r.pretrain_steps),
                            region_name=region_name)
            hours, kwh, kg, mark, estimated = cost.hours, cost.kwh, cost.kg_co2e, "*", True
        finetune = [x.finetune_flops for x in results if x.finetune_flops is not None and
                    (x.method, x.variant, x.backbone, x.pretrain_dataset, x.pretrain_steps, x.pretrain_flops) == run]
        rows.append((r.method + (f" ({r.variant})" if r.variant else ""), r.backbone, r.pretrain_dataset,
                     number(r.pretrain_steps, ","), number(r.pretrain_flops), number(hours) + mark,
                     number(kwh) + (mark if kwh is not None else ""), number(kg) + (mark if kg is not None else ""),
                     number(r.local_kwh), number(r.local_kg_co2e),
                     number(float(np.median(finetune)) if finetune else None)))
    note = f"Study model: {throughput.describe()}, region {region_name}."
    if estimated:
        note += " * estimated here with that model (the row records no study-model figures)."
    return Table("Pre-training cost: FLOPs, time, energy and CO2",
                 ("method", "backbone", "pre-train data", "steps", "pre-train FLOPs", "hours (study model)",
                  "kWh (study)", "kgCO2e (study)", "kWh (local)", "kgCO2e (local)", "fine-tune FLOPs"),
                 tuple(rows), note)


def reach_table(analysis: Analysis) -> Table:
    """Per curve, the FLOPs at which its median score first reaches the fraction of its panel's best score."""
    best = {(p.pretrain_dataset, p.task): p.best_score for p in analysis.panels}
    rows = tuple((r.key.label, r.key.backbone, r.key.pretrain_dataset, r.key.task,
                  f"{r.target:.2f} (of {best[(r.key.pretrain_dataset, r.key.task)]:.2f})", r.describe())
                 for r in analysis.reach)
    return Table(f"FLOPs to reach {analysis.reach_fraction:.0%} of the best score", ("method", "backbone",
                 "pre-train data", "task", "target %", "pre-train FLOPs"), rows,
                 "Best = the best median score of the panel, scratch included; interpolated in log FLOPs between "
                 "measured budgets; '<=' when the cheapest measured budget already reaches it.")


def fit_table(analysis: Analysis) -> Table:
    """The per-curve laws of score vs pre-training FLOPs, each with its held-out check."""
    rows = []
    for key, fit in sorted(analysis.fits.items()):
        law, check = fit.law, fit.check
        rows.append((key.label, key.backbone, key.pretrain_dataset, key.task, "-" if law is None else law.form,
                     "-" if law is None else f"{law.exponent:.3f}",
                     "-" if law is None else _interval(law.exponent_interval()),
                     "-" if law is None else f"{law.ceiling:.1f}", str(len(fit.curve.encoders)),
                     "-" if law is None else f"{law.x_min:.3g}-{law.x_max:.3g}",
                     "-" if check is None else f"{check.error:+.2f}",
                     "-" if check is None or check.inside is None else ("yes" if check.inside else "no"), fit.note))
    noise = "; ".join(f"{task}: {model.describe()}" for task, model in sorted(analysis.noise.items()))
    return Table("Fitted laws: score = ceiling - A * FLOPs^b (power law: ceiling 100; saturating: fitted)",
                 ("method", "backbone", "pre-train data", "task", "form", "b", "b 95% interval", "ceiling",
                  "encoders", "FLOPs range", "held-out error", "inside", "note"), tuple(rows),
                 "One observation per pre-trained encoder (mean of its confirm seeds, else its explore seeds); form "
                 "chosen by the error predicting the largest budget from the others (the power law with 3 budgets); "
                 "intervals from a parametric hierarchical bootstrap with encoder and seed variance "
                 f"({noise or 'none'}).")


def crossover_table(analysis: Analysis) -> Table:
    rows = tuple((c.context, c.smaller, c.larger, c.outcome, number(c.p_cross, ".2f"), number(c.flops),
                  _interval(c.interval), c.sentence()) for c in analysis.crossovers)
    return Table("Where the curves of two backbone sizes cross (from the fits)", ("curves", "smaller", "larger",
                 "outcome", "p_cross", "crossover FLOPs", "95% interval", "in words"), rows,
                 "p_cross: share of bootstrap resamples whose curves cross inside the measured range; FLOPs and "
                 "interval over those that do; 'wins throughout' only when p_cross < 5%.")


def saturation_table(analysis: Analysis) -> Table:
    rows = []
    for s in analysis.saturation:
        f = s.fit
        rows.append((s.label, s.upstream_source, "-" if f is None else f"{f.e_ir:.2f}",
                     "-" if f is None else _interval(f.interval("e_ir"), ".2f"),
                     "-" if f is None else f"{f.k:.3g}", "-" if f is None else f"{f.a:.3g}",
                     "-" if f is None else f"{f.r_squared:.3f}", f"{len(s.frontier)} of {len(s.upstream_error)}",
                     s.note or (f"interval: {s.result.sigma_source}"
                                + (f"; {s.result.boot_failed} resample(s) with too small a frontier left out"
                                   if s.result.boot_failed else ""))))
    return Table("Saturation (Abnar et al. 2021): e_DS = k * e_US^a + e_IR", ("setup", "upstream accuracy",
                 "e_IR %", "e_IR 95% interval", "k", "a", "R^2", "frontier encoders", "note"), tuple(rows),
                 "Per pre-training setup (method, data, backbone family; its encoders differ in size and budget), "
                 "fitted on the upper frontier: the encoders no encoder of lower-or-equal upstream accuracy beats "
                 "downstream. Errors in % (100 - accuracy); e_US from the held-out upstream accuracy (the method's "
                 "own where it has one, else the kNN monitor's), e_DS from the mean of each encoder's seeds. "
                 "Interval: the downstream means redrawn with their standard errors, frontier and fit redone. "
                 "e_IR is the downstream error more pre-training is not expected to remove.")


def upstream_table(analysis: Analysis) -> Table:
    rows = []
    for law in analysis.upstream:
        f, p, s = law.loss_fit, law.params_fit, law.steps_fit
        rows.append((law.label, str(len(law.points)), str(len(law.frontier)),
                     "-" if f is None else f"{f.exponent:.3f}", "-" if f is None else _interval(f.exponent_interval()),
                     "-" if f is None else f"{f.r_squared:.3f}", "-" if p is None else f"{p.exponent:.2f}",
                     "-" if s is None else f"{s.exponent:.2f}", law.note))
    return Table("Upstream loss vs FLOPs and the compute-optimal frontier (Smith et al. 2023)",
                 ("family / method / data", "runs", "frontier runs", "loss exponent", "95% interval", "R^2",
                  "size ~ FLOPs^", "steps ~ FLOPs^", "note"), tuple(rows),
                 "Upstream loss: each run's loss on a fixed held-out set at the end of pre-training (runs that "
                 "recorded none: their last training batch's, counted in the note). Frontier: the runs with the "
                 "lowest upstream loss for their FLOPs; the loss law is fitted on it, and the size and steps "
                 "exponents say how each grows with compute along it.")


def layer_table(curves: Sequence[LayerCurve]) -> Table:
    rows = [(c.task, c.label, c.pretrain_dataset or "-", number(c.pretrain_flops), number(c.upstream_accuracy, ".1f"),
             str(c.best_layer), c.choice, f"{c.best_depth:.2f}", f"{c.score:.1f}", f"{c.mious[-1]:.1f}")
            for c in curves]
    trend = best_layer_trend(curves)
    note = ("Linear probes on each layer of the frozen encoder (segtransfer.probe.layer_probe); depth = (layer + 1) / "
            "layers. The best layer is chosen on a validation split carved from the probe's training data and its "
            "test mIoU reported ('chosen on': test for results written before that split). ")
    note += ("Too few upstream accuracies for a trend." if trend is None else
             f"Least-squares trend of the best depth: {trend[1]:+.4f} per upstream-accuracy point.")
    return Table("Layer-wise transfer (Abnar et al. 2021): the best layer per run", (
        "task", "run", "pre-train data", "pre-train FLOPs", "upstream acc %", "best layer", "chosen on",
        "best depth", "its test mIoU %", "last-layer mIoU %"), tuple(rows), note)


def prepretrain_table(series: Sequence[ChainSeries]) -> Table:
    rows = []
    for s in series:
        for task, points in sorted(s.scores.items()):
            for flops, score in points:
                rows.append((task, f"{s.method} {s.backbone}", s.first_method or "-", number(s.first_flops),
                             number(flops), number(flops + s.first_flops), f"{score:.1f}"))
    return Table("MAE pre-pretraining (Singh et al. 2023): both stages' FLOPs", (
        "task", "second stage", "first stage", "first-stage FLOPs", "second-stage FLOPs", "total FLOPs",
        "score %"), tuple(rows), "A chain's pre-training FLOPs are both stages'; '-': the second stage alone.")

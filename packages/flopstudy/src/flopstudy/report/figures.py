"""The report's figures (matplotlib, Agg): accuracy vs pre-training FLOPs per (pre-training dataset, task) and
as an overview grid, downstream vs upstream error with the saturation fit, upstream loss vs FLOPs per backbone
family, layer-wise transfer, and MAE pre-pretraining's two views (per second-stage FLOP, per total FLOP).

Accuracy panels follow the study's Figures 1, 2, 4, 5: one colour per (method, variant), one line style per
backbone size (smallest solid, next dashed, then dotted, dash-dot), seed spread (min-max) as error bars, the
from-scratch baseline as a horizontal line with its seed band, the fitted power law as a faint line over its
measured range, and the efficiency front (scratch included) ringed. Figures are built with matplotlib's
object API (no pyplot), so nothing global changes and nothing needs closing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from ..analysis.layer_transfer import LayerCurve, best_layer_trend
from ..analysis.prepretrain import ChainSeries
from ..analysis.study import Analysis, Panel

__all__ = ["LINE_STYLES", "layer_figure", "overview_figure", "panel_figure", "prepretrain_figure", "saturation_figure",
           "upstream_figure"]

LINE_STYLES = ("-", "--", ":", "-.")


def _colours(analysis: Analysis) -> dict[str, tuple]:
    labels = sorted({k.label for k in analysis.fits})
    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {label: cmap(i % cmap.N) for i, label in enumerate(labels)}


def _style(analysis: Analysis, backbone: str) -> str:
    return LINE_STYLES[analysis.size_rank.get(backbone, 0) % len(LINE_STYLES)]


def _metric(analysis: Analysis, task: str) -> str:
    return next((r.score_metric for r in analysis.rows if r.task == task and r.score_metric), "score")


def draw_panel(ax: Axes, panel: Panel, analysis: Analysis, *, legend: bool = True) -> None:
    """Draws one (pre-training dataset, task) panel on ``ax``."""
    colours = _colours(analysis)
    for curve in panel.curves:
        x = np.array([p.flops for p in curve.points])
        y = np.array([p.median for p in curve.points])
        err = np.array([[p.median - p.low for p in curve.points], [p.high - p.median for p in curve.points]])
        colour, style = colours[curve.key.label], _style(analysis, curve.key.backbone)
        ax.errorbar(x, y, yerr=err, color=colour, linestyle=style, marker="o", markersize=4, capsize=3,
                    label=f"{curve.key.label} {curve.key.backbone}")
        law = analysis.fits[curve.key].law
        if law is not None:
            grid = np.geomspace(law.x_min, law.x_max, 50)
            ax.plot(grid, [law.predict(float(g)) for g in grid], color=colour, linestyle=style,
                    linewidth=0.8, alpha=0.35)
    for base in panel.baselines:
        style = _style(analysis, base.backbone)
        ax.axhline(base.point.median, color="0.35", linestyle=style, linewidth=1.2,
                   label=f"scratch {base.backbone} ({base.point.seeds} seeds)")
        if base.point.high > base.point.low:
            ax.axhspan(base.point.low, base.point.high, color="0.5", alpha=0.12)
    front = [p for p in panel.front if p.key is not None]
    if front:
        ax.scatter([p.flops for p in front], [p.score for p in front], s=150, facecolors="none",
                   edgecolors="black", linewidths=1.2, zorder=5, label="efficiency front (scratch included)")
    if panel.curves:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap on narrow FLOP ranges
    ax.set_xlabel(f"pre-training FLOPs ({analysis.convention})")
    ax.set_ylabel(f"{_metric(analysis, panel.task)} (%)")
    ax.set_title(f"pre-trained on {panel.pretrain_dataset or '-'} -> {panel.task}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if legend:
        ax.legend(fontsize=7, loc="best")


def panel_figure(panel: Panel, analysis: Analysis) -> Figure:
    fig = Figure(figsize=(7.5, 4.8), dpi=110)
    ax = fig.subplots()
    draw_panel(ax, panel, analysis)
    fig.tight_layout()
    return fig


def overview_figure(analysis: Analysis) -> Figure:
    """Every panel in one grid (the report's main figure)."""
    n = max(len(analysis.panels), 1)
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(7.5 * cols, 4.8 * rows), dpi=100)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, panel in zip(axes.flat, analysis.panels, strict=False):
        draw_panel(ax, panel, analysis)
    for ax in list(axes.flat)[len(analysis.panels):]:
        ax.set_visible(False)
    fig.suptitle("Downstream score vs pre-training compute", fontsize=12)
    fig.tight_layout()
    return fig


def saturation_figure(analysis: Analysis) -> Figure | None:
    """Downstream vs upstream error per pre-training setup: every encoder (hollow), its upper frontier (filled)
    and the saturation curve fitted on it; None without data."""
    groups = [s for s in analysis.saturation if s.upstream_error]
    if not groups:
        return None
    fig = Figure(figsize=(7, 4.6), dpi=110)
    ax = fig.subplots()
    cmap = colormaps["tab10"]
    for i, s in enumerate(groups):
        colour = cmap(i % cmap.N)
        ax.scatter(s.upstream_error, s.downstream_error, facecolors="none", edgecolors=colour, s=18)
        front = [(s.upstream_error[j], s.downstream_error[j]) for j in s.frontier]
        ax.scatter(*zip(*front, strict=True), color=colour, s=18, label=s.label)
        if s.fit is not None:
            grid = np.linspace(min(s.upstream_error), max(s.upstream_error), 60)
            ax.plot(grid, [s.fit.predict(float(g)) for g in grid], color=colour,
                    label=f"fit: e_IR = {s.fit.e_ir:.1f}%")
            ax.axhline(s.fit.e_ir, color=colour, linestyle=":", linewidth=0.8)
    ax.set_xlabel("upstream error (100 - held-out upstream accuracy, %)")
    ax.set_ylabel("downstream error (100 - score, %)")
    ax.set_title("Saturation on the upper frontier: e_DS = k e_US^a + e_IR (Abnar et al. 2021)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def upstream_figure(analysis: Analysis) -> Figure | None:
    """Upstream loss vs FLOPs, every family on one axis: runs, frontier (ringed) and its power law."""
    laws = [law for law in analysis.upstream if law.points]
    if not laws:
        return None
    fig = Figure(figsize=(7, 4.6), dpi=110)
    ax = fig.subplots()
    cmap = colormaps["tab10"]
    for i, law in enumerate(laws):
        colour = cmap(i % cmap.N)
        ax.scatter([p.flops for p in law.points], [p.loss for p in law.points], color=colour, s=14, alpha=0.6,
                   label=law.label)
        ax.scatter([p.flops for p in law.frontier], [p.loss for p in law.frontier], s=80, facecolors="none",
                   edgecolors=colour)
        if law.loss_fit is not None:
            f = law.loss_fit
            grid = np.geomspace(f.x_min, f.x_max, 50)
            ax.plot(grid, [f.predict(float(g)) for g in grid], color=colour,
                    label=f"loss ~ FLOPs^{f.exponent:.3f} (R^2 {f.r_squared:.2f})")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"pre-training FLOPs ({analysis.convention})")
    ax.set_ylabel("final upstream loss")
    ax.set_title("Upstream loss vs compute; rings: compute-optimal frontier", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def layer_figure(curves: Sequence[LayerCurve]) -> Figure | None:
    """Layer-wise transfer: probe test mIoU by relative depth per run (one colour per method and backbone, darker
    for more pre-training FLOPs, a star at the layer chosen on validation data), and the best layer's depth against
    upstream accuracy with its least-squares trend. None without layer-probe rows."""
    if not curves:
        return None
    fig = Figure(figsize=(12, 4.6), dpi=110)
    by_layer, by_upstream = fig.subplots(1, 2)
    labels = sorted({c.label for c in curves})
    cmaps = [colormaps[name] for name in ("Blues", "Oranges", "Greens", "Reds", "Purples", "Greys")]
    for i, label in enumerate(labels):
        mine = sorted((c for c in curves if c.label == label), key=lambda c: c.pretrain_flops)
        cmap = cmaps[i % len(cmaps)]
        for j, c in enumerate(mine):
            colour = cmap(0.45 + 0.5 * (j + 1) / len(mine))
            budget = "scratch" if not c.pretrain_flops else f"{c.pretrain_flops:.2g} FLOPs"
            by_layer.plot(c.depths, c.mious, color=colour, marker="o", markersize=3, label=f"{label}, {budget}")
            by_layer.scatter([c.best_depth], [c.score], marker="*", s=120, color=colour, edgecolors="black",
                             zorder=5)
            if c.upstream_accuracy is not None:
                by_upstream.scatter([c.upstream_accuracy], [c.best_depth], color=colour, s=40, edgecolors="black",
                                    label=label if j == len(mine) - 1 else None)
    trend = best_layer_trend(curves)
    if trend is not None:
        xs = np.array([c.upstream_accuracy for c in curves if c.upstream_accuracy is not None])
        grid = np.linspace(xs.min(), xs.max(), 20)
        by_upstream.plot(grid, trend[0] + trend[1] * grid, color="black", linewidth=1,
                         label=f"trend: {trend[1]:+.4f} depth per upstream %")
    task = ", ".join(sorted({c.task for c in curves}))
    by_layer.set_xlabel("relative depth of the probed layer ((index + 1) / layers)")
    by_layer.set_ylabel("linear-probe mIoU (%)")
    by_layer.set_title(f"Layer-wise transfer to {task}; stars: best layer", fontsize=10)
    by_upstream.set_xlabel("upstream accuracy (kNN, %)")
    by_upstream.set_ylabel("relative depth of the best layer")
    by_upstream.set_title("Where the best layer is, as upstream accuracy grows", fontsize=10)
    for ax in (by_layer, by_upstream):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def prepretrain_figure(series: Sequence[ChainSeries], convention: str) -> Figure | None:
    """MAE pre-pretraining: the second stage's training loss (top) and each task's score (below), against the
    second stage's FLOPs (left) and the total FLOPs of both stages (right); one line per first-stage budget
    (grey: no first stage). None without chains."""
    if not series:
        return None
    tasks = sorted({task for s in series for task in s.scores})
    fig = Figure(figsize=(12, 3.8 * (1 + len(tasks))), dpi=100)
    axes = fig.subplots(1 + len(tasks), 2, squeeze=False)
    groups = sorted({(s.method, s.backbone, s.pretrain_dataset) for s in series})
    styles = {g: LINE_STYLES[i % len(LINE_STYLES)] for i, g in enumerate(groups)}
    firsts = sorted({s.first_flops for s in series if s.first_flops})
    cmap = colormaps["viridis"]
    for s in series:
        colour = "0.4" if not s.first_flops else cmap(0.15 + 0.7 * firsts.index(s.first_flops) / max(len(firsts), 1))
        style = styles[(s.method, s.backbone, s.pretrain_dataset)]
        label = f"{s.label} {s.backbone}" + (f" on {s.pretrain_dataset}" if len(groups) > 1 else "")
        for col, shift in enumerate((0.0, s.first_flops)):
            if s.loss:
                x, y = zip(*s.loss, strict=True)
                axes[0, col].plot(np.array(x) + shift, y, color=colour, linestyle=style, label=label)
            for row, task in enumerate(tasks, start=1):
                if task in s.scores:
                    x, y = zip(*s.scores[task], strict=True)
                    axes[row, col].plot(np.array(x) + shift, y, color=colour, linestyle=style, marker="o", label=label)
    for col, axis in enumerate(("second-stage FLOPs", "total FLOPs (both stages)")):
        axes[0, col].set_ylabel("second-stage training loss")
        axes[0, col].set_title(f"Convergence vs {axis}", fontsize=10)
        for row, task in enumerate(tasks, start=1):
            axes[row, col].set_ylabel(f"{task} score (%)")
            axes[row, col].set_title(f"Transfer vs {axis}", fontsize=10)
        for ax in axes[:, col]:
            ax.set_xscale("log")  # matplotlib labels minor ticks when fewer than two decades are in view
            ax.tick_params(axis="x", which="minor", labelsize=7)
            ax.set_xlabel(f"{axis} ({convention})")
            ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("MAE pre-pretraining (Singh et al. 2023): with and without the first stage", fontsize=12)
    fig.tight_layout()
    return fig

"""The report's figures (matplotlib, Agg): accuracy vs pre-training FLOPs per (pre-training dataset, task) and
as an overview grid, downstream vs upstream error with the saturation fit, and upstream loss vs FLOPs.

Accuracy panels follow the study's Figures 1, 2, 4, 5: one colour per (method, variant), one line style per
backbone size (smallest solid, next dashed, then dotted, dash-dot), seed spread (min-max) as error bars, the
from-scratch baseline as a horizontal line with its seed band, the fitted power law as a faint line over its
measured range, and the efficiency front (scratch included) ringed. Figures are built with matplotlib's
object API (no pyplot), so nothing global changes and nothing needs closing.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from .analysis import Analysis, Panel

__all__ = ["LINE_STYLES", "overview_figure", "panel_figure", "saturation_figure", "upstream_figure"]

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
        fit = analysis.fits[curve.key].fit
        if fit is not None:
            grid = np.geomspace(fit.x_min, fit.x_max, 50)
            ax.plot(grid, [100.0 - fit.predict(float(g)) for g in grid], color=colour, linestyle=style,
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
    """Downstream vs upstream error per (task, dataset) with the fitted saturation curve; None without data."""
    groups = [s for s in analysis.saturation if s.upstream_error]
    if not groups:
        return None
    fig = Figure(figsize=(7, 4.6), dpi=110)
    ax = fig.subplots()
    cmap = colormaps["tab10"]
    for i, s in enumerate(groups):
        colour = cmap(i % cmap.N)
        ax.scatter(s.upstream_error, s.downstream_error, color=colour, s=18,
                   label=f"{s.task} / {s.pretrain_dataset}")
        if s.fit is not None:
            grid = np.linspace(min(s.upstream_error), max(s.upstream_error), 60)
            ax.plot(grid, [s.fit.predict(float(g)) for g in grid], color=colour,
                    label=f"fit: e_IR = {s.fit.e_ir:.1f}%")
            ax.axhline(s.fit.e_ir, color=colour, linestyle=":", linewidth=0.8)
    ax.set_xlabel("upstream error (100 - upstream accuracy, %)")
    ax.set_ylabel("downstream error (100 - score, %)")
    ax.set_title("Saturation: e_DS = k e_US^a + e_IR (Abnar et al. 2021)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
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

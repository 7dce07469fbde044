"""The report's Figure 3 with a per-image column: FLOPs per training step and per image, measured vs closed form.

Input: `sslmethods.costs.figure3.load_figure3` of the JSON ``tools/profile_flops.py --table`` writes (the one home of
the Figure 3 rows, `StepCost`, and their labels). Per step alone hides that DINO, run at batch 1024, is among the
dearest per image.

FLOP convention: whole program (all devices together) by default; "per-device" divides the per-step count by
``devices`` (the study appears to quote per-device counts of its 32-chip TPUv3 setup). The per-image count is the
same in both conventions (a device's step is over its share of the batch).
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from sslmethods.costs.figure3 import StepCost

from ..results.curves import FLOP_CONVENTIONS
from .table_markup import Table

__all__ = ["figure3_figure", "figure3_table"]


def _check(convention: str, devices: int) -> None:
    if convention not in FLOP_CONVENTIONS:
        raise ValueError(f"convention={convention!r}: expected one of {FLOP_CONVENTIONS}")
    if devices < 1:
        raise ValueError(f"devices={devices}: expected >= 1")


def _step_divisor(convention: str, devices: int) -> tuple[float, str]:
    if convention == "per-device":
        return float(devices), f"per device ({devices} devices)"
    return 1.0, "whole program (all devices)"


def figure3_table(costs: list[StepCost], *, convention: str = "whole-program", devices: int = 32) -> Table:
    _check(convention, devices)
    divisor, name = _step_divisor(convention, devices)
    rows = tuple((c.label, c.model, str(c.batch), f"{c.flops_per_step / divisor / 1e12:,.1f}",
                  f"{c.flops_per_step / c.batch / 1e9:,.1f}", "-" if c.ratio is None else f"{c.ratio:.3f}")
                 for c in costs)
    return Table(f"Figure 3: FLOPs per training step ({name}) and per image", ("method", "model", "batch",
                 "TFLOPs/step", "GFLOPs/image", "measured / closed form"), rows,
                 "Measured on the compiled step (XLA: 2 FLOPs per multiply-add; forward, backward, optimizer, EMA). "
                 "Closed form: backbones and text encoder only, so measured is a little larger.")


def figure3_figure(costs: list[StepCost], *, convention: str = "whole-program", devices: int = 32) -> Figure:
    """Two bar panels (per step, per image), one bar per method and model, value labels and the measured /
    closed-form ratio on each bar, closed-form counts as black ticks."""
    _check(convention, devices)
    divisor, name = _step_divisor(convention, devices)
    labels = list(dict.fromkeys(c.label for c in costs))
    models = sorted(dict.fromkeys(c.model for c in costs),
                    key=lambda m: np.median([c.flops_per_step / c.batch for c in costs if c.model == m]))
    width = 0.8 / len(models)
    fig = Figure(figsize=(min(18.0, max(10.0, 0.6 * len(labels) * len(models))), 9.5), dpi=100)
    axes = fig.subplots(2, 1)
    panels = ((axes[0], lambda c: c.flops_per_step / divisor, lambda c: c.analytic_flops_per_step / divisor,
               f"FLOPs per training step, {name}"),
              (axes[1], lambda c: c.flops_per_step / c.batch, lambda c: c.analytic_flops_per_step / c.batch,
               "FLOPs per image (same in both conventions)"))
    cmap = colormaps["tab10"]
    for ax, value, analytic, title in panels:
        for m, model in enumerate(models):
            mine = {c.label: c for c in costs if c.model == model}
            xs = [i + (m - (len(models) - 1) / 2) * width for i, label in enumerate(labels) if label in mine]
            chosen = [mine[label] for label in labels if label in mine]
            heights = [value(c) for c in chosen]
            bars = ax.bar(xs, heights, width, color=cmap(m % cmap.N), label=model)
            for bar, c in zip(bars, chosen, strict=True):
                ratio = "" if c.ratio is None else f" (x{c.ratio:.3f})"
                ax.annotate(f"{value(c):.3g}{ratio}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", rotation=90, fontsize=6, xytext=(0, 2),
                            textcoords="offset points")
                if c.analytic_flops_per_step:
                    ax.hlines(analytic(c), bar.get_x(), bar.get_x() + bar.get_width(), colors="black",
                              linewidth=1.2)
        ax.set_yscale("log")
        ax.set_xticks(range(len(labels)), labels, rotation=50, ha="right", fontsize=8)
        ax.set_ylabel("FLOPs")
        ax.set_title(title + "; black ticks: closed form, (xR): measured / closed form", fontsize=9)
        every = [value(c) for c in costs]
        ax.set_ylim(min(every) / 3, max(every) * 40)  # room for the rotated value labels on a log axis
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig

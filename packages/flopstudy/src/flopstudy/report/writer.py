"""The report: figures, tables, summary and the validated table, written all-or-nothing into one folder.

    loaded = load_results(["runs/demo"])
    write_report(loaded, "runs/demo/report", ReportOptions(figure3="docs/figure3.json"))

Output: ``accuracy_vs_flops.png`` (every panel), one ``accuracy_<dataset>_<task>.png`` per panel, ``figure3.png``
(with ``figure3``), ``saturation.png`` and ``upstream_loss.png`` (when the table has upstream metrics),
``layer_transfer.png`` (with layer-probe rows), ``prepretrain.png`` (with MAE pre-pretraining chains; it reads the
second stages' loss curves from their run folders),
``report.md``, ``report.html`` (self-contained), ``report.json`` (the rows, the ``verdicts``, every fit,
``extrapolation_checks``, ``crossovers`` and the ``headline`` sentences: the contract in the flopstudy README)
and ``results.csv`` (the validated rows, every status).
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
from pathlib import Path
from typing import Any

import flopmeter
from matplotlib.figure import Figure
from sslmethods.costs.figure3 import load_figure3

from ..analysis.layer_transfer import LayerCurve, best_layer_trend, layer_curves
from ..analysis.prepretrain import ChainSeries, chain_series
from ..analysis.study import Analysis, analyse
from ..budget.cost import throughput_model
from ..results.curves import FLOP_CONVENTIONS
from ..results.files import write_results_csv
from ..results.loaded import LoadedResults
from .figure3 import figure3_figure, figure3_table
from .figures import (
    layer_figure,
    overview_figure,
    panel_figure,
    prepretrain_figure,
    saturation_figure,
    upstream_figure,
)
from .html_page import render_html
from .output_dir import check_replaceable, staged_dir
from .study_tables import (
    budget_table,
    co2_table,
    crossover_table,
    default_table_budget,
    fit_table,
    layer_table,
    prepretrain_table,
    reach_table,
    saturation_table,
    upstream_table,
)
from .summary import headline, summary_lines
from .table_markup import Table

__all__ = ["GENERATOR", "ReportOptions", "write_report"]

GENERATOR = "flopstudy.report"


@dataclasses.dataclass(frozen=True)
class ReportOptions:
    """``convention``: the FLOP axis ("whole-program" or "per-device"); ``figure3``: a ``profile_flops.py
    --table`` JSON (None: no Figure 3) and ``figure3_devices`` for its per-device bars; ``table_steps``: the
    budget of Tables 1/2 in steps (None: the length most methods share, in steps or FLOPs:
    `study_tables.default_table_budget`); ``reach_fraction``: "FLOPs to reach X%" target;
    ``hardware``/``chips``/``region``/``mfu``: the study's CO2 model (32 TPUv3 in europe-west1); ``alpha``: the
    verdicts' level (`flopstudy.analysis.verdicts`)."""

    convention: str = "whole-program"
    figure3: str | Path | None = None
    figure3_devices: int = 32
    table_steps: int | None = None
    reach_fraction: float = 0.9
    hardware: str = flopmeter.STUDY_HARDWARE
    chips: int = flopmeter.STUDY_CHIPS
    region: str = flopmeter.STUDY_REGION
    mfu: float = 0.4
    n_boot: int = 1000
    seed: int = 0
    alpha: float = 0.05

    def __post_init__(self) -> None:
        if self.convention not in FLOP_CONVENTIONS:
            raise ValueError(f"--flops {self.convention!r}: expected one of {FLOP_CONVENTIONS}")
        if self.figure3_devices < 1:
            raise ValueError(f"--devices {self.figure3_devices}: expected >= 1")
        if self.table_steps is not None and self.table_steps < 1:
            raise ValueError(f"--table-steps {self.table_steps}: expected >= 1")
        if not 0 < self.reach_fraction <= 1:
            raise ValueError(f"--reach {self.reach_fraction}: expected a fraction in (0, 1]")
        if not 0 < self.alpha < 1:
            raise ValueError(f"--alpha {self.alpha}: expected a level in (0, 1)")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "none"


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})  # no URL in the image metadata
    return buffer.getvalue()


def _tables(loaded: LoadedResults, analysis: Analysis, options: ReportOptions, figure3: Table | None,
            layers: list[LayerCurve], chains: list[ChainSeries]) -> list[Table]:
    throughput = throughput_model(loaded.rows, hardware_name=options.hardware, chips=options.chips,
                                  mfu=options.mfu)
    tables = []
    for task in analysis.tasks:
        budget = ("steps", options.table_steps) if options.table_steps else default_table_budget(analysis, task)
        backbones = sorted({c.key.backbone for p in analysis.panels if p.task == task for c in p.curves},
                           key=lambda b: analysis.size_rank.get(b, 0))
        if budget is not None:
            unit, value = budget
            tables += [budget_table(analysis, task, b, **{unit: value}) for b in backbones]
    tables += [co2_table(loaded.rows, throughput, options.region), reach_table(analysis), fit_table(analysis),
               crossover_table(analysis), saturation_table(analysis), upstream_table(analysis)]
    tables += ([layer_table(layers)] if layers else []) + ([prepretrain_table(chains)] if chains else [])
    return tables + ([figure3] if figure3 is not None else [])


def _figures(analysis: Analysis, costs: list | None, options: ReportOptions, layers: list[LayerCurve],
             chains: list[ChainSeries]) -> list[tuple[str, str, Figure]]:
    """(file name, caption, figure) for every figure of the report."""
    out = [("accuracy_vs_flops.png", "Score vs pre-training FLOPs, every (pre-training dataset, task); "
            f"FLOPs: {analysis.convention}", overview_figure(analysis))]
    out += [(f"accuracy_{_slug(p.pretrain_dataset or 'scratch')}_{_slug(p.task)}.png",
             f"{p.task} after pre-training on {p.pretrain_dataset or '-'}", panel_figure(p, analysis))
            for p in analysis.panels]
    if costs is not None:
        out.append(("figure3.png", f"Figure 3: FLOPs per step ({options.convention}) and per image",
                    figure3_figure(costs, convention=options.convention, devices=options.figure3_devices)))
    for name, caption, fig in (("saturation.png", "Downstream vs upstream error (saturation)",
                                saturation_figure(analysis)),
                               ("upstream_loss.png", "Upstream loss vs FLOPs per backbone family, compute-optimal "
                                "frontier", upstream_figure(analysis)),
                               ("layer_transfer.png", "Layer-wise transfer: probe score by layer, best layer vs "
                                "upstream accuracy", layer_figure(layers)),
                               ("prepretrain.png", "MAE pre-pretraining: per second-stage FLOP and per total FLOP",
                                prepretrain_figure(chains, analysis.convention))):
        if fig is not None:
            out.append((name, caption, fig))
    return out


def _markdown(intro: list[str], summary: list[str], figures: list[tuple[str, str, Figure]],
              tables: list[Table], problems: list[str]) -> str:
    lines = ["# flopwise report", "", *intro, "", "## Summary", "", *[f"- {s}" for s in summary], "", "## Figures",
             ""]
    lines += [f"![{caption}]({name})\n" for name, caption, _ in figures]
    lines += ["## Tables", ""] + [t.markdown() for t in tables]
    lines += ["## Left out", ""] + ([f"- {p}" for p in problems] or ["Nothing."])
    return "\n".join(lines) + "\n"


def write_report(loaded: LoadedResults, out_dir: str | Path, options: ReportOptions = ReportOptions()) -> dict:
    """Analyses ``loaded`` and writes the report into ``out_dir`` (replacing a previous report there, never a
    folder with other files nor one holding an input: `flopstudy.report.output_dir`). Returns what ``report.json``
    holds. ValueError for bad options or a bad Figure 3 file, raised before anything is written."""
    check_replaceable(Path(out_dir), loaded.sources)
    costs = None if options.figure3 is None else load_figure3(options.figure3)
    analysis = analyse(loaded.rows, convention=options.convention, reach_fraction=options.reach_fraction,
                       n_boot=options.n_boot, seed=options.seed, alpha=options.alpha)
    problems = [str(p) for p in loaded.problems + analysis.problems]
    done = sum(r.done for r in loaded.rows)
    not_done = ", ".join(f"{n} {status}" for status, n in sorted(analysis.not_done.items()))
    intro = [f"Results: {', '.join(loaded.sources) or '-'}.",
             f"{len(loaded.rows)} valid rows, {done} finished" + (f" (not finished: {not_done})" if not_done else "")
             + f"; {len(problems)} problem(s) listed under 'Left out'.",
             f"FLOP axis: {options.convention} (whole program = all devices together, XLA convention of 2 FLOPs "
             "per multiply-add; per device = divided by the run's device count).",
             "Scores are the task's headline metric in %; points are medians over fine-tuning seeds with min-max "
             "bars; curve laws are fitted to one observation per pre-trained encoder, checked by predicting each "
             "curve's largest budget from the others, and come with 95% intervals that hold encoder and "
             "fine-tuning seed variance; saturation fits come with 95% bootstrap intervals."]
    layers, chains = layer_curves(analysis.rows), chain_series(analysis.rows)
    summary = summary_lines(analysis) + _beyond_lines(layers, chains)
    f3 = None if costs is None else figure3_table(costs, convention=options.convention,
                                                  devices=options.figure3_devices)
    tables = _tables(loaded, analysis, options, f3, layers, chains)
    figures = _figures(analysis, costs, options, layers, chains)
    pngs = [(name, caption, _png(fig)) for name, caption, fig in figures]
    report: dict[str, Any] = {
        "generator": GENERATOR, "convention": options.convention, "sources": list(loaded.sources),
        "rows": [r.to_record() for r in loaded.rows], "problems": problems, "summary": summary,
        "headline": headline(analysis),
        "not_done": analysis.not_done, "verdicts": [v.to_json() for v in analysis.verdicts],
        "front": [{"pretrain_dataset": p.pretrain_dataset, "task": p.task,
                   "points": [{"label": f.label, "flops": f.flops, "score": f.score} for f in p.front]}
                  for p in analysis.panels],
        "fits": [{"curve": fit.key._asdict(), "fit": None if fit.law is None else fit.law.to_json(),
                  "note": fit.note} for fit in analysis.fits.values()],
        "noise": {task: model.to_json() for task, model in analysis.noise.items()},
        "extrapolation_checks": [c.to_json() for c in analysis.extrapolation_checks],
        "crossovers": [c.to_json() for c in analysis.crossovers],
        "saturation": [s.to_json() for s in analysis.saturation],
        "upstream": [law.to_json() for law in analysis.upstream],
        "layers": [dataclasses.asdict(c) | {"best_layer": c.best_layer, "best_depth": c.best_depth, "score": c.score,
                                            "choice": c.choice} for c in layers],
        "prepretrain": [dataclasses.asdict(s) for s in chains],
        "tables": [t.to_json() for t in tables], "figures": [name for name, _, _ in pngs],
    }
    page = render_html(title="flopwise report", intro=intro, summary=summary,
                       figures=[(caption, png) for _, caption, png in pngs], tables=tables, problems=problems)
    with staged_dir(out_dir, loaded.sources) as staging:
        for name, _, png in pngs:
            (staging / name).write_bytes(png)
        (staging / "report.md").write_text(_markdown(intro, summary, figures, tables, problems))
        (staging / "report.html").write_text(page)
        (staging / "report.json").write_text(json.dumps(report, indent=1, default=_json_default) + "\n")
        write_results_csv(loaded.rows, staging / "results.csv")
    return report


def _beyond_lines(layers: list[LayerCurve], chains: list[ChainSeries]) -> list[str]:
    """Summary sentences for layer-wise transfer and MAE pre-pretraining."""
    lines = []
    trend = best_layer_trend(layers)
    if trend is not None:
        direction = "deeper" if trend[1] > 0 else "shallower"
        lines.append(f"Layer-wise transfer: the best probed layer moves {direction} as upstream accuracy grows "
                     f"({trend[1]:+.4f} relative depth per upstream-accuracy point, {len(layers)} runs).")
    for s in chains:
        if not s.first_method:
            continue
        plain = next((p for p in chains if (p.method, p.backbone, p.pretrain_dataset, p.first_method)
                      == (s.method, s.backbone, s.pretrain_dataset, "")), None)
        for task, points in sorted(s.scores.items()):
            if plain is None or task not in plain.scores:
                continue
            flops, score = points[-1]
            same = dict(plain.scores[task]).get(flops)
            if same is not None:
                lines.append(f"MAE pre-pretraining, {task}: {s.method} {s.backbone} after {s.first_method} "
                             f"({s.first_flops:.3g} FLOPs) scores {score:.1f}% vs {same:.1f}% without, at "
                             f"{flops:.3g} second-stage FLOPs ({flops + s.first_flops:.3g} in total).")
    return lines


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")

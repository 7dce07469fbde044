"""The study layer: sweeps (`flopstudy.sweep`: configs, run directories, executors), the results table, its
analysis (curves, efficiency front, fitted laws checked by extrapolation, crossovers, saturation, compute-optimal
frontier), the report and the budget planner, and the verdicts vs scratch (`flopstudy.analysis.verdicts`). Top of the
dependency list: it may import every other package; nothing imports it."""

from sslmethods.costs.figure3 import StepCost, load_figure3

from flopstudy.analysis.efficiency import FrontPoint, Reach, efficiency_front, flops_to_reach
from flopstudy.analysis.study import Analysis, CurveFit, Panel, SaturationResult, analyse, fit_curves
from flopstudy.analysis.verdicts import Verdict, compare_to_scratch
from flopstudy.budget.cost import (
    Budget,
    RunCost,
    Throughput,
    budget_flops,
    parse_budget,
    run_cost,
    throughput_model,
)
from flopstudy.budget.planner import Option, Plan, plan, rank_options
from flopstudy.fits.crossover import Crossover, fit_crossover
from flopstudy.fits.curve_laws import FORMS, CurveLaw, NoiseModel, estimate_noise, fit_law, stream
from flopstudy.fits.extrapolation import ExtrapolationCheck, check_form, checkable_forms, choose_form
from flopstudy.fits.saturation import (
    FrontierSaturation,
    SaturationFit,
    fit_frontier_saturation,
    fit_saturation,
    upper_frontier,
)
from flopstudy.fits.scaling import ScalingFit, fit_scaling_law
from flopstudy.fits.upstream import (
    FrontierPoint,
    UpstreamLaw,
    backbone_family,
    compute_optimal_frontier,
    fit_upstream_laws,
)
from flopstudy.report.figure3 import figure3_figure, figure3_table
from flopstudy.report.summary import summary_lines
from flopstudy.report.table_markup import Table
from flopstudy.report.writer import ReportOptions, write_report
from flopstudy.results.curves import (
    FLOP_CONVENTIONS,
    Baseline,
    Curve,
    CurvePoint,
    EncoderPoint,
    apply_flop_convention,
    build_curves,
    size_ranks,
)
from flopstudy.results.files import load_results, read_results_file, write_results_csv, write_results_jsonl
from flopstudy.results.finetune_outputs import collect_finetune_results
from flopstudy.results.loaded import LoadedResults, Problem
from flopstudy.results.rows import COLUMNS, REQUIRED_COLUMNS, SEED_ROLES, STATUS_DONE, Column, CurveKey, ResultRow
from flopstudy.sweep import LocalExecutor, SubmititExecutor, SweepSpec, load_sweep, rebuild_results, run_sweep

# The one place the version is written (pyproject.toml reads it: [tool.setuptools.dynamic]).
__version__ = "0.2.0"

__all__ = [
    "COLUMNS",
    "FLOP_CONVENTIONS",
    "FORMS",
    "REQUIRED_COLUMNS",
    "SEED_ROLES",
    "STATUS_DONE",
    "Analysis",
    "Baseline",
    "Budget",
    "Column",
    "Crossover",
    "Curve",
    "CurveFit",
    "CurveKey",
    "CurveLaw",
    "CurvePoint",
    "EncoderPoint",
    "ExtrapolationCheck",
    "FrontPoint",
    "FrontierPoint",
    "FrontierSaturation",
    "LoadedResults",
    "LocalExecutor",
    "NoiseModel",
    "Option",
    "Panel",
    "Plan",
    "Problem",
    "Reach",
    "ReportOptions",
    "ResultRow",
    "RunCost",
    "SaturationFit",
    "SaturationResult",
    "ScalingFit",
    "StepCost",
    "SubmititExecutor",
    "SweepSpec",
    "Table",
    "Throughput",
    "UpstreamLaw",
    "Verdict",
    "analyse",
    "apply_flop_convention",
    "backbone_family",
    "budget_flops",
    "build_curves",
    "check_form",
    "checkable_forms",
    "choose_form",
    "collect_finetune_results",
    "compare_to_scratch",
    "compute_optimal_frontier",
    "efficiency_front",
    "estimate_noise",
    "figure3_figure",
    "figure3_table",
    "fit_crossover",
    "fit_curves",
    "fit_frontier_saturation",
    "fit_law",
    "fit_saturation",
    "fit_scaling_law",
    "fit_upstream_laws",
    "flops_to_reach",
    "load_figure3",
    "load_results",
    "load_sweep",
    "parse_budget",
    "plan",
    "rank_options",
    "read_results_file",
    "rebuild_results",
    "run_cost",
    "run_sweep",
    "size_ranks",
    "stream",
    "summary_lines",
    "throughput_model",
    "upper_frontier",
    "write_report",
    "write_results_csv",
    "write_results_jsonl",
]

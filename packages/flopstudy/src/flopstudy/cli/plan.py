"""Which (method, backbone, steps) to pre-train for a budget, from the fitted curves of a results table.

    flopwise-plan runs/sweep --budget 3e18 [--hardware tpu-v3 --chips 32 --region gcp:europe-west1]
    flopwise-plan runs/sweep --budget 100h        # device-hours (chip-hours over all chips)
    flopwise-plan runs/sweep --budget 5kgCO2e

(also `python tools/plan.py ...` in a checkout). Prints the best option with its expected score and 95%
interval, wall time, energy and CO2 on that hardware (fitted steps/s where the results hold runs measured on it,
else datasheet peak at --mfu, stated), the runners-up, and a warning with the distance when the budget lies
outside the measured range, with how far the answer lies beyond the last validated budget and the held-out error
there. Options more than 10x outside their measured range are refused (status 2) unless --allow-extrapolation.
Bad input: one line "error: ..." and status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import flopcli
import flopmeter

from ..analysis.study import analyse
from ..budget.cost import parse_budget
from ..budget.planner import plan
from ..results.files import load_results


def build_parser() -> flopcli.ArgumentParser:
    p = flopcli.ArgumentParser(description=__doc__)
    p.add_argument("results", nargs="+", type=Path, metavar="RESULTS", help="sweep root, results file or folder")
    p.add_argument("--budget", required=True, help="3e18 (FLOPs) | 100h (device-hours) | 5kgCO2e")
    p.add_argument("--task", help="downstream task (needed when the results hold several)")
    p.add_argument("--pretrain-dataset", help="only consider this pre-training dataset")
    p.add_argument("--hardware", default=flopmeter.STUDY_HARDWARE, help="flopmeter hardware table name")
    p.add_argument("--chips", type=flopcli.positive_int, default=flopmeter.STUDY_CHIPS)
    p.add_argument("--region", default=flopmeter.STUDY_REGION, help="flopmeter region table name")
    p.add_argument("--mfu", type=flopcli.fraction, default=0.4, help="assumed MFU where no fitted steps/s exists")
    p.add_argument("--pue", action="store_true", help="multiply energy by the region's PUE")
    p.add_argument("--allow-extrapolation", action="store_true",
                   help="rank options more than 10x outside their measured FLOPs (refused otherwise)")
    return p


def body(args: argparse.Namespace) -> int:
    with flopcli.about("--budget"):
        budget = parse_budget(args.budget)
    loaded = load_results(args.results)
    result = plan(analyse(loaded.rows), budget, task=args.task, pretrain_dataset=args.pretrain_dataset,
                  hardware_name=args.hardware, chips=args.chips, region_name=args.region, mfu=args.mfu,
                  use_pue=args.pue, allow_extrapolation=args.allow_extrapolation)
    print(result.describe())
    return flopcli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return flopcli.run(build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())

"""Which (method, backbone, steps) to pre-train for a budget, from the fitted curves of a results table.

    python tools/plan.py runs/sweep --budget 3e18 [--hardware tpu-v3 --chips 32 --region gcp:europe-west1]
    python tools/plan.py runs/sweep --budget 100h        # device-hours (chip-hours over all chips)
    python tools/plan.py runs/sweep --budget 5kgCO2e

Prints the best option with its expected score and 95% interval, wall time, energy and CO2 on that hardware
(fitted steps/s where the results hold runs measured on it, else datasheet peak at --mfu, stated), the runners-up,
and a warning with the distance when the budget lies outside the measured range. Bad input: one line
"error: ..." and exit status 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flopstudy import analyse, load_results, parse_budget, plan
from flopstudy.cli import OneLineErrorParser, run_cli


def main(argv: list[str] | None = None):
    p = OneLineErrorParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", type=Path, metavar="RESULTS", help="sweep root, results file or folder")
    p.add_argument("--budget", required=True, help="3e18 (FLOPs) | 100h (device-hours) | 5kgCO2e")
    p.add_argument("--task", help="downstream task (needed when the results hold several)")
    p.add_argument("--pretrain-dataset", help="only consider this pre-training dataset")
    p.add_argument("--hardware", default="tpu-v3", help="flopmeter hardware table name")
    p.add_argument("--chips", type=int, default=32)
    p.add_argument("--region", default="gcp:europe-west1", help="flopmeter region table name")
    p.add_argument("--mfu", type=float, default=0.4, help="assumed MFU where no fitted steps/s exists")
    p.add_argument("--pue", action="store_true", help="multiply energy by the region's PUE")
    args = p.parse_args(argv)

    def run():
        budget = parse_budget(args.budget)
        loaded = load_results(args.results)
        result = plan(analyse(loaded.rows), budget, task=args.task, pretrain_dataset=args.pretrain_dataset,
                      hardware_name=args.hardware, chips=args.chips, region_name=args.region, mfu=args.mfu,
                      use_pue=args.pue)
        print(result.describe())
        return result

    return run_cli(run)


if __name__ == "__main__":
    main()

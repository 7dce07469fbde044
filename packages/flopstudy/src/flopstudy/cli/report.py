"""The study's report from a results table: figures, tables, fits, summary, one self-contained HTML page.

    flopwise-report runs/sweep --out runs/sweep/report [--figure3 docs/figure3.json] [--flops per-device]

(also `python tools/report.py ...` in a checkout). RESULTS: a sweep root (its results.csv, else
results.jsonl), a results .csv/.jsonl file, or a folder of fine-tuning result.json files (flopwise-finetune-seg).
Broken files, out-of-range values and points without a FLOP count are listed under "Left out" (a warning line
each) and skipped. --alpha: the verdicts' level (pre-trained points vs scratch on confirm seeds, Welch t-test,
Holm-adjusted). Writes into --out (replaced whole, never mixed): accuracy_vs_flops.png and one PNG per
(pre-training dataset, task), figure3.png, saturation.png, upstream_loss.png, report.md, report.html,
report.json, results.csv and .flopwise-report.json (the list of files it wrote). --out must be new, empty, or a
report folder holding only those files: a folder with anything else, or one that is or holds a RESULTS input,
is refused (exit 2) and left untouched. Bad input: one line "error: ..." and status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import flopcli
import flopmeter

from ..report.output_dir import check_replaceable
from ..report.writer import ReportOptions, write_report
from ..results.curves import FLOP_CONVENTIONS
from ..results.files import load_results


def build_parser() -> flopcli.ArgumentParser:
    p = flopcli.ArgumentParser(description=__doc__)
    p.add_argument("results", nargs="+", type=Path, metavar="RESULTS", help="sweep root, results file or folder")
    p.add_argument("--out", type=Path, required=True, help="report folder")
    p.add_argument("--flops", choices=FLOP_CONVENTIONS, default="whole-program", help="FLOP convention shown")
    p.add_argument("--figure3", type=Path, help="JSON of flopwise-profile --table (e.g. docs/figure3.json)")
    p.add_argument("--devices", type=flopcli.positive_int, default=32,
                   help="devices for Figure 3's per-device bars (default 32)")
    p.add_argument("--table-steps", type=flopcli.positive_int, help="pre-training steps of the method x dataset tables")
    p.add_argument("--reach", type=flopcli.fraction, default=0.9, help="FLOPs to reach this fraction of the best score")
    p.add_argument("--hardware", default=flopmeter.STUDY_HARDWARE, help="CO2 model hardware (flopmeter table)")
    p.add_argument("--chips", type=flopcli.positive_int, default=flopmeter.STUDY_CHIPS)
    p.add_argument("--region", default=flopmeter.STUDY_REGION)
    p.add_argument("--mfu", type=flopcli.fraction, default=0.4, help="assumed MFU where no fitted steps/s exists")
    p.add_argument("--alpha", type=flopcli.fraction, default=0.05,
                   help="level of the verdicts vs scratch: significant when the Holm-adjusted p is below it (0.05)")
    return p


def body(args: argparse.Namespace) -> int:
    options = ReportOptions(convention=args.flops, figure3=args.figure3, figure3_devices=args.devices,
                            table_steps=args.table_steps, reach_fraction=args.reach, hardware=args.hardware,
                            chips=args.chips, region=args.region, mfu=args.mfu, alpha=args.alpha)
    check_replaceable(args.out, args.results)  # before reading anything
    loaded = load_results(args.results)
    report = write_report(loaded, args.out, options)
    print("\n".join(f"- {line}" for line in report["summary"]))
    for problem in report["problems"]:
        print(f"warning: left out: {problem}", file=sys.stderr)
    print(f"wrote {args.out}/report.html, report.md, report.json, results.csv and {len(report['figures'])} figures")
    return flopcli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return flopcli.run(build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())

"""The study's report from a results table: figures, tables, fits, summary, one self-contained HTML page.

    python tools/report.py runs/sweep --out runs/sweep/report [--figure3 docs/figure3.json] [--flops per-device]

RESULTS: a sweep root (its results.csv, else results.jsonl), a results .csv/.jsonl file, or a folder of
fine-tuning result.json files (tools/finetune_seg.py). Broken files and out-of-range values are listed under
"Left out" and skipped. Writes into --out (replaced whole, never mixed): accuracy_vs_flops.png and one PNG per
(pre-training dataset, task), figure3.png, saturation.png, upstream_loss.png, report.md, report.html, report.json,
results.csv. Bad input: one line "error: ..." and exit status 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flopstudy import FLOP_CONVENTIONS, ReportOptions, load_results, write_report
from flopstudy.cli import OneLineErrorParser, run_cli


def main(argv: list[str] | None = None) -> dict:
    p = OneLineErrorParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", type=Path, metavar="RESULTS", help="sweep root, results file or folder")
    p.add_argument("--out", type=Path, required=True, help="report folder")
    p.add_argument("--flops", choices=FLOP_CONVENTIONS, default="whole-program", help="FLOP convention shown")
    p.add_argument("--figure3", type=Path, help="JSON of tools/profile_flops.py --table (e.g. docs/figure3.json)")
    p.add_argument("--devices", type=int, default=32, help="devices for Figure 3's per-device bars (default 32)")
    p.add_argument("--table-steps", type=int, help="pre-training steps of the method x dataset tables")
    p.add_argument("--reach", type=float, default=0.9, help="FLOPs to reach this fraction of the best score")
    p.add_argument("--hardware", default="tpu-v3", help="CO2 model hardware (flopmeter table)")
    p.add_argument("--chips", type=int, default=32)
    p.add_argument("--region", default="gcp:europe-west1")
    p.add_argument("--mfu", type=float, default=0.4, help="assumed MFU where no fitted steps/s exists")
    args = p.parse_args(argv)

    def run() -> dict:
        options = ReportOptions(convention=args.flops, figure3=args.figure3, figure3_devices=args.devices,
                                table_steps=args.table_steps, reach_fraction=args.reach, hardware=args.hardware,
                                chips=args.chips, region=args.region, mfu=args.mfu)
        loaded = load_results(args.results)
        report = write_report(loaded, args.out, options)
        print("\n".join(f"- {line}" for line in report["summary"]))
        for problem in report["problems"]:
            print(f"left out: {problem}")
        print(f"wrote {args.out}/report.html, report.md, report.json, results.csv and {len(report['figures'])} "
              "figures")
        return report

    return run_cli(run)


if __name__ == "__main__":
    main()

"""The study in miniature, on the embedded Fashion-MNIST data (what `make demo` runs): the `demo` sweep, then its
report.

    python tools/demo.py [--out runs/demo] [--workers 2] [--config.budgets="(150,300)" ...]

Runs the sweep of configs/demo.py (six methods x three budgets x two pre-training sets, a from-scratch baseline,
segmentation transfer, three fine-tuning seeds for the best point of each method and scratch) into OUT
(`OUT/results.csv`), then writes the report into OUT/report (report.html, report.md, figures) and prints where
it is. Interrupted? Run the same command again: finished stages are kept and interrupted ones resume. Any
--config.<field>=value changes the sweep (see configs/demo.py). Exit status 1 if a run failed, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from flopstudy import ReportOptions, load_results, write_report
    from flopstudy import sweep as fs
    from flopstudy.cli import OneLineErrorParser, run_cli

    p = OneLineErrorParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="the sweep's folder (default runs/demo)")
    p.add_argument("--config", default=str(ROOT / "configs" / "demo.py"), help="sweep config (default the demo's)")
    p.add_argument("--workers", type=int, default=2,
                   help="worker processes (default 2: one per core of a 2-core machine; 0 runs in this process)")
    args, overrides = p.parse_known_args(argv)

    def run() -> int:
        start = time.time()
        sweep = fs.load_sweep(args.config, overrides)
        status = fs.run_sweep(sweep, args.out, executor=fs.LocalExecutor(args.workers))
        figure3 = ROOT / "docs" / "figure3.json"
        report = write_report(load_results([args.out]), args.out / "report",
                              ReportOptions(figure3=figure3 if figure3.is_file() else None))
        print("\n".join(f"- {line}" for line in report["summary"]))
        print(f"\ndemo finished in {(time.time() - start) / 60:.1f} min; report: {args.out / 'report' / 'report.html'}"
              f" (also report.md and the figures beside it); results: {args.out / 'results.csv'}")
        return 1 if status.failed else 0

    return run_cli(run)


if __name__ == "__main__":
    sys.exit(main())

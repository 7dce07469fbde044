"""The study in miniature on the embedded Fashion-MNIST data (what `make demo` runs): the `demo` sweep, then its
report.

    flopwise-demo [--out runs/demo] [--workers 2] [--config.budgets="(150,300)" ...]

(also `python tools/demo.py ...` in a checkout). Runs the sweep of configs/demo.py (six methods x three budgets x
two pre-training sets, a from-scratch baseline, segmentation transfer of fmnist_scenes, confirm fine-tuning
seeds for the best point of each method and for scratch) into OUT (`OUT/results.csv`), then writes the report
(with the verdicts vs scratch) into OUT/report (report.html, report.md, figures) and prints its summary, then
last the verdict and crossover sentences, where report.html is and the command that opens it. Interrupted? Run
the same command again: finished stages are kept and interrupted ones resume (exit status 3 until then, and no
report is written from an unfinished sweep). Any --config.<field>=value changes the
sweep (see configs/demo.py). Exit status 1 if a run failed (the report is still written, without it), 2 on bad input.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import flopcli
import flopmeter

from ..report.writer import ReportOptions, write_report
from ..results.files import load_results
from ..sweep import LocalExecutor, load_sweep, run_sweep

CONFIG = Path("configs/demo.py")  # the checkout's demo config (make demo runs from the checkout)
FIGURE3 = Path("docs/figure3.json")  # the checkout's measured Figure 3


def build_parser() -> flopcli.ArgumentParser:
    p = flopcli.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="the sweep's folder (default runs/demo)")
    p.add_argument("--config", type=Path, default=CONFIG, help=f"sweep config (default {CONFIG})")
    p.add_argument("--workers", type=flopcli.non_negative_int, default=2,
                   help="worker processes (default 2: one per core of a 2-core machine; 0 runs in this process)")
    return p


def body(args: argparse.Namespace) -> int:
    unknown = [a for a in args.overrides if not a.startswith("--config.")]
    if unknown:
        raise flopcli.CommandError(f"unrecognized arguments: {' '.join(unknown)}")
    if not args.config.is_file():
        raise flopcli.CommandError(f"--config {args.config}: no such file (run from the repository root, or give "
                                   "the path of configs/demo.py)")
    start = time.time()
    sweep = load_sweep(str(args.config), args.overrides)
    status = run_sweep(sweep, args.out, executor=LocalExecutor(args.workers))
    if status.left or status.running:
        raise flopcli.Interrupted(f"the demo stopped with {status.done}/{status.total} runs done (their progress "
                                  "saved; no report yet); run the same command again to resume")
    report_and_close(args.out, start)
    return flopcli.EXIT_FAILED if status.failed else flopcli.EXIT_OK


def report_and_close(out: Path, start: float) -> dict:
    """Writes the report of the finished sweep in ``out`` into ``out/report``, prints its summary, then last (so
    nothing needs scrolling back for) the report's own verdict and crossover sentences (report.json
    ``headline``), where report.html is and the command that opens it. Returns what report.json holds."""
    report = write_report(load_results([out]), out / "report",
                          ReportOptions(figure3=FIGURE3 if FIGURE3.is_file() else None))
    print("\n".join(f"- {line}" for line in report["summary"]))
    print(f"\ndemo finished in {(time.time() - start) / 60:.1f} min; results: {out / 'results.csv'}")
    print("\n".join(closing_lines(report, out / "report")))
    return report


def closing_lines(report: dict, folder: Path) -> list[str]:
    """The lines a run ends with: ``verdict:`` and ``crossover:`` sentences from ``report["headline"]``, the path
    of ``folder/report.html`` and one command that opens it in a browser (Python's webbrowser, any platform)."""
    page = folder / "report.html"
    return [*(f"verdict: {line}" for line in report["headline"]["verdicts"]),
            *(f"crossover: {line}" for line in report["headline"]["crossovers"]),
            f"report: {page} (also report.md and the figures beside it)",
            f"open it: {shlex.join([_python(), '-m', 'webbrowser', page.resolve().as_uri()])}"]


def _python() -> str:
    """This interpreter as a user can type it: relative when it lives under the current folder (``.venv``)."""
    exe = Path(sys.executable)
    return os.path.relpath(exe) if exe.is_relative_to(Path.cwd()) else str(exe)


def main(argv: Sequence[str] | None = None) -> int:
    flopmeter.reuse_host_memory()  # before any JAX work: XLA:CPU reuses its step buffers (docs/benchmarks.md)
    return flopcli.run(build_parser(), body, argv, unknown_into="overrides")


if __name__ == "__main__":
    sys.exit(main())

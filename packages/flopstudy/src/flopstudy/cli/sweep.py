"""Run a sweep: the study's grid of methods x budgets x backbones x datasets, then one results table.

    flopwise-sweep --config configs/demo.py --out runs/demo
    flopwise-sweep --config configs/demo.py --out runs/demo --config.budgets="(150,300)" --workers 2
    flopwise-sweep --config configs/paper.py:i1k --out runs/i1k --executor slurm --config.slurm.slurm_partition=gpu
    flopwise-sweep --config configs/demo.py --out runs/demo --table-only   # rebuild results.csv

(also `python tools/sweep.py ...` in a checkout). Every field of the config can be overridden with
--config.<field>=value (Python literals). Each run lives in OUT/runs/<run_id>/ (its spec.json beside it);
finished stages are skipped and interrupted ones resume, so the same command continues a sweep. Writes
OUT/results.csv and OUT/results.jsonl (rebuilt from the run folders) and OUT/status.json. JAX's compilation
cache: $FLOPWISE_JAX_CACHE, else OUT/.jax_cache. Exit status: 0 every run done, 1 a run failed (its error is in
its folder), 2 bad input (one line "error: ..."), 3 interrupted (SIGTERM/SIGINT: run the same command again).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import flopcli
import flopmeter

from ..sweep import LocalExecutor, SubmititExecutor, load_sweep, rebuild_results, run_sweep


def build_parser() -> flopcli.ArgumentParser:
    p = flopcli.ArgumentParser(description=__doc__)
    p.add_argument("--config", help="a config file with get_config(arg): PATH.py or PATH.py:ARG")
    p.add_argument("--out", required=True, type=Path, help="the sweep's output folder")
    p.add_argument("--executor", choices=("local", "slurm"), default="local",
                   help="local: this machine; slurm: one submitit job per run (parameters: config.slurm)")
    p.add_argument("--workers", type=flopcli.non_negative_int, default=0,
                   help="local worker processes (0: runs in this process)")
    p.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    p.add_argument("--table-only", action="store_true", help="only rebuild results.csv/.jsonl from the run folders")
    return p


def body(args: argparse.Namespace) -> int:
    if args.table_only:
        if args.overrides or args.config:
            raise flopcli.CommandError("--table-only rebuilds the table from the run folders; drop --config and "
                                       f"{' '.join(args.overrides) or 'the overrides'}")
        if not args.out.is_dir():
            raise flopcli.CommandError(f"--out {args.out}: no such folder; there is no sweep to tabulate")
        print(rebuild_results(args.out))
        return flopcli.EXIT_OK
    if args.config is None:
        raise flopcli.CommandError("--config is required (except with --table-only)")
    unknown = [a for a in args.overrides if not a.startswith("--config.")]
    if unknown:
        raise flopcli.CommandError(f"unrecognized arguments: {' '.join(unknown)}")
    sweep = load_sweep(args.config, args.overrides)
    executor = (SubmititExecutor(args.out / ".submitit", cluster="slurm", parameters=sweep.slurm)
                if args.executor == "slurm" else LocalExecutor(args.workers))
    # The persistent compilation cache is enabled by run_sweep (flopstudy.sweep.job.enable_compilation_cache).
    status = run_sweep(sweep, args.out, executor=executor, retry_failed=args.retry_failed)
    print(f"results: {args.out / 'results.csv'}")
    if status.left or status.running:
        raise flopcli.Interrupted(f"sweep {status.name} stopped with {status.done}/{status.total} runs done "
                                  f"({status.left + status.running} not finished, their progress saved); run the "
                                  "same command again to resume")
    return flopcli.EXIT_FAILED if status.failed else flopcli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    flopmeter.reuse_host_memory()  # before any JAX work: XLA:CPU reuses its step buffers (docs/benchmarks.md)
    return flopcli.run(build_parser(), body, argv, unknown_into="overrides")


if __name__ == "__main__":
    sys.exit(main())

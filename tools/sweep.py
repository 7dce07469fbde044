"""Run a sweep: the study's grid of methods x budgets x backbones x datasets, then one results table.

    python tools/sweep.py --config configs/demo.py --out runs/demo
    python tools/sweep.py --config configs/demo.py --out runs/demo --config.budgets="(150,300)" --workers 2
    python tools/sweep.py --config configs/paper.py:i1k --out runs/i1k --executor slurm \\
        --config.slurm.slurm_partition=gpu
    python tools/sweep.py --config configs/demo.py --out runs/demo --table-only   # rebuild results.csv

Every field of the config can be overridden with --config.<field>=value (Python literals). Each run lives in
OUT/runs/<run_id>/ (its spec.json beside it); finished stages are skipped and interrupted ones resume, so the
same command continues a sweep. Writes OUT/results.csv and OUT/results.jsonl (rebuilt from the run folders) and
OUT/status.json. JAX's compilation cache: $FLOPWISE_JAX_CACHE, else OUT/.jax_cache. Exit status 1 if a run failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from flopstudy import sweep as fs

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="a config file with get_config(arg): PATH.py or PATH.py:ARG")
    p.add_argument("--out", required=True, type=Path, help="the sweep's output folder")
    p.add_argument("--executor", choices=("local", "slurm"), default="local",
                   help="local: this machine; slurm: one submitit job per run (parameters: config.slurm)")
    p.add_argument("--workers", type=int, default=0, help="local worker processes (0: runs in this process)")
    p.add_argument("--retry-failed", action="store_true", help="run failed runs again")
    p.add_argument("--table-only", action="store_true", help="only rebuild results.csv/.jsonl from the run folders")
    args, overrides = p.parse_known_args(argv)
    try:
        if args.table_only:
            print(fs.rebuild_results(args.out))
            return 0
        if args.config is None:
            raise ValueError("--config is required (except with --table-only)")
        sweep = fs.load_sweep(args.config, overrides)
        executor = (fs.SubmititExecutor(args.out / ".submitit", cluster="slurm", parameters=sweep.slurm)
                    if args.executor == "slurm" else fs.LocalExecutor(args.workers))
        status = fs.run_sweep(sweep, args.out, executor=executor, retry_failed=args.retry_failed)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"results: {args.out / 'results.csv'}")
    return 1 if status.failed else 0


if __name__ == "__main__":
    sys.exit(main())

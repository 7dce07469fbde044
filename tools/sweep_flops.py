"""FLOPs per step of every distinct pre-training step of a sweep config, measured abstractly (no data, no run).

    python tools/sweep_flops.py --config configs/convnets.py:paper --out docs/convnets_paper_flops.json
    python tools/sweep_flops.py --config configs/prepretrain.py:paper

Each step program of the config's plan (budgets only change its schedule) is compiled on jax.ShapeDtypeStruct
inputs and counted by flopmeter (flopstudy.sweep.sweep_step_costs): whole-program FLOPs (2 per multiply-add),
the method's closed form, parameters. Prints a Markdown table; --out also writes the rows as JSON. Bad input:
one line "error: ..." and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from flopstudy.cli import OneLineErrorParser, run_cli


def main(argv: list[str] | None = None) -> list[dict]:
    p = OneLineErrorParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="a sweep config: PATH.py or PATH.py:ARG")
    p.add_argument("--out", type=Path, help="write the rows as JSON here")
    args, overrides = p.parse_known_args(argv)

    def run() -> list[dict]:
        from flopstudy.sweep import load_sweep, sweep_step_costs
        from runloop import write_json_atomic

        rows = sweep_step_costs(load_sweep(args.config, overrides), log=lambda m: print(m, file=sys.stderr))
        print("| step | batch | FLOPs per step | closed form | measured / closed form | params |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['run']} | {r['batch']} | {r['flops_per_step']:.4g} | {r['analytic_flops_per_step']:.4g} | "
                  f"{r['flops_per_step'] / r['analytic_flops_per_step']:.3f} | {r['params']:,} |")
        if args.out:
            write_json_atomic(args.out, {"config": args.config, "rows": rows})
        return rows

    return run_cli(run)


if __name__ == "__main__":
    main()

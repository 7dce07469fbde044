"""FLOPs per step of every distinct pre-training step of a sweep config, measured abstractly (no data, no run).

    flopwise-sweep-flops --config configs/convnets.py:paper --out docs/convnets_paper_flops.json
    flopwise-sweep-flops --config configs/prepretrain.py:paper

(also `python tools/sweep_flops.py ...` in a checkout). Each step program of the config's plan (budgets only
change its schedule) is compiled on jax.ShapeDtypeStruct inputs and counted by flopmeter
(flopstudy.sweep.sweep_step_costs): whole-program FLOPs (2 per multiply-add), the method's closed form,
parameters. Prints a Markdown table; --out also writes the rows as JSON. --config.<field>=value overrides a
field. Bad input: one line "error: ..." and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import flopcli
from runloop import write_json_atomic

from ..sweep import load_sweep, sweep_step_costs


def build_parser() -> flopcli.ArgumentParser:
    p = flopcli.ArgumentParser(description=__doc__)
    p.add_argument("--config", required=True, help="a sweep config: PATH.py or PATH.py:ARG")
    p.add_argument("--out", type=Path, help="write the rows as JSON here")
    return p


def body(args: argparse.Namespace) -> int:
    unknown = [a for a in args.overrides if not a.startswith("--config.")]
    if unknown:
        raise flopcli.CommandError(f"unrecognized arguments: {' '.join(unknown)}")
    if args.out is not None and args.out.is_dir():
        raise flopcli.CommandError(f"--out {args.out} is a folder; expected a JSON file path")
    sweep = load_sweep(args.config, args.overrides)
    rows = sweep_step_costs(sweep, log=lambda m: print(m, file=sys.stderr))
    print("| step | batch | FLOPs per step | closed form | measured / closed form | params |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['batch']} | {r['flops_per_step']:.4g} | {r['analytic_flops_per_step']:.4g} | "
              f"{r['flops_per_step'] / r['analytic_flops_per_step']:.3f} | {r['params']:,} |")
    if args.out is not None:
        write_json_atomic(args.out, {"config": args.config, "rows": rows})
    return flopcli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return flopcli.run(build_parser(), body, argv, unknown_into="overrides")


if __name__ == "__main__":
    sys.exit(main())

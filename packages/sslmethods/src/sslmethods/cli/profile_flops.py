"""FLOPs of one full training step (forward, backward, optimizer, EMA/teacher work), measured abstractly.

    flopwise-profile --method mae --model vit-b16 --batch 4096 --mask-ratio 0.75 --json
    flopwise-profile --method mypkg.simsiam:SimSiam --model vit-b16 --batch 4096 --json
    flopwise-profile --table --out runs/figure3      # the study's Figure 3 (+ MAE decoder shares)

(also `python tools/profile_flops.py ...` in a checkout). --method is a registered name or the import path of
any AbstractMethod subclass (its module on PYTHONPATH). The step is compiled, never run, on
jax.ShapeDtypeStruct inputs (sslmethods.costs.step_cost), so paper-scale steps are measured on a laptop; --table counts
the lowered steps in parallel processes, cached in OUT/.cache (sslmethods.costs.figure3). FLOPs count 2 per
multiply-add (XLA); MACs are half. "analytic" is the method's own closed form (analytic_macs). --mask-ratio,
--decoder-depth and --text-encoder set the method fields of the same name; a flag the method has no field for is
an error. Bad input: one line "error: ..." and status 2, before anything is compiled.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import flopcli
import vitcore

from ..costs import figure3, step_cost
from ..pretrain import recipes
from ..pretrain.spec import method_name

FIELD_FLAGS = {"mask_ratio": "--mask-ratio", "decoder_depth": "--decoder-depth", "text_encoder": "--text-encoder"}
STEP_FLAGS = ("method", "model", "batch", "image_size", *FIELD_FLAGS)


def build_parser() -> flopcli.ArgumentParser:
    p = flopcli.ArgumentParser(description=__doc__)
    p.add_argument("--method", type=method_name, metavar="NAME|MODULE:CLASS",
                   help="a registered name (supervised, clip, simclr, byol, dino, mae) or package.module:ClassName")
    p.add_argument("--model", choices=list(vitcore.PRESETS))
    p.add_argument("--batch", type=flopcli.positive_int)
    p.add_argument("--image-size", type=flopcli.positive_int, default=None)
    p.add_argument("--mask-ratio", type=flopcli.fraction, default=None, help="MAE's mask_ratio (preset: 0.75)")
    p.add_argument("--decoder-depth", type=flopcli.positive_int, default=None,
                   help="MAE's decoder_depth (preset: 8; tiny: 1)")
    p.add_argument("--text-encoder", default=None, choices=("mini", "medium"), help="CLIP's (preset: mini)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--table", action="store_true", help="the study's Figure 3: markdown, JSON and PNG in --out")
    p.add_argument("--out", type=Path, default=None, help="with --table: the output folder (default runs/figure3; "
                                                                  "OUT/.cache: rows already measured)")
    p.add_argument("--compiled", action="store_true", help="--table: count the compiled steps (slower) instead "
                                                           "of the lowered ones")
    return p


def overrides_for(args: argparse.Namespace) -> dict:
    """The method fields the flags set; an error for a flag the method has no field for."""
    cls = recipes.method_class(args.method)
    given = {field: getattr(args, field) for field in FIELD_FLAGS if getattr(args, field) is not None}
    if "text_encoder" in given:
        given["text_encoder"] = f"text-{given['text_encoder']}"
    for field in given:
        if field not in cls.hyperparameter_names():
            raise flopcli.CommandError(
                f"{FIELD_FLAGS[field]} does not apply to --method {args.method} ({cls.__name__} has no field "
                f"{field!r}; its fields: {', '.join(cls.hyperparameter_names())})")
    return given


def _check_out_dir(out: Path) -> None:
    """--out must be a folder that can be created or written, checked before minutes of compiling."""
    if out.exists() and not out.is_dir():
        raise flopcli.CommandError(f"--out {out} is a file; expected a folder for figure3.json/.md/.png")
    existing = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise flopcli.CommandError(f"--out {out}: {existing} is a file, so the folder cannot be created")


def run_table(out: Path, *, compiled: bool) -> int:
    _check_out_dir(out)
    start = time.perf_counter()
    rows = figure3.table(progress=lambda r: print(f"  {figure3.label(r)} {r['model']}: {r['flops_per_step']:.3e}",
                                                  file=sys.stderr, flush=True),
                         count="compiled" if compiled else "lowered", cache_dir=out / ".cache")
    figure3.write(out, rows, time.perf_counter() - start)
    print(figure3.markdown(rows, time.perf_counter() - start))
    return flopcli.EXIT_OK


def body(args: argparse.Namespace) -> int:
    if args.table:
        given = [f"--{name.replace('_', '-')}" for name in STEP_FLAGS if getattr(args, name) is not None]
        if given or args.json:
            drop = ", ".join(given or ["--json"])
            raise flopcli.CommandError(f"--table measures the study's fixed grid; drop {drop}")
        return run_table(args.out or Path("runs/figure3"), compiled=args.compiled)
    if args.out is not None or args.compiled:
        flag = "--out" if args.out is not None else "--compiled"
        raise flopcli.CommandError(f"{flag} is for --table; one step's profile is printed")
    missing = [f"--{name}" for name in ("method", "model", "batch") if getattr(args, name) is None]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise flopcli.CommandError(f"{' and '.join(missing)} {verb} required (or --table)")
    if args.image_size is not None:
        with flopcli.about(f"--image-size {args.image_size}"):
            vitcore.get_config(args.model, image_size=args.image_size)
    overrides = overrides_for(args)
    try:
        result = step_cost.profile(args.method, args.model, args.batch, image_size=args.image_size,
                                   method_overrides=overrides)
    except (ValueError, TypeError) as error:  # "mask_ratio=0.99 keeps none ...": name the flag that set it
        flag = next((FIELD_FLAGS[f] for f in overrides if str(error).startswith(f"{f}=")), None)
        if flag is None or str(error).startswith("--"):
            raise
        raise flopcli.CommandError(f"{flag} {overrides[flag.removeprefix('--').replace('-', '_')]}: {error}") from error
    print(json.dumps(result, indent=None if args.json else 2))
    return flopcli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return flopcli.run(build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())

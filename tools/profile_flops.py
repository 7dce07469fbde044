"""FLOPs of one full training step (forward, backward, optimizer, EMA/teacher work), measured abstractly.

    python tools/profile_flops.py --method mae --model vit-b16 --batch 4096 --mask-ratio 0.75 --json
    python tools/profile_flops.py --method mypkg.simsiam:SimSiam --model vit-b16 --batch 4096 --json
    python tools/profile_flops.py --table --out runs/figure3      # the study's Figure 3 (+ MAE decoder shares)

--method is a registered name or the import path of any AbstractMethod subclass (its module on PYTHONPATH). The
step is compiled, never run, on jax.ShapeDtypeStruct inputs (sslmethods.step_cost), so paper-scale steps are
measured on a laptop; --table counts the lowered steps in parallel processes, cached in OUT/.cache
(sslmethods.figure3). FLOPs count 2 per multiply-add (XLA); MACs are half. "analytic" is the method's own closed
form (analytic_macs). --mask-ratio, --decoder-depth and --text-encoder set the method fields of the same name; a
flag the method has no field for is an error.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

FIELD_FLAGS = {"mask_ratio": "--mask-ratio", "decoder_depth": "--decoder-depth", "text_encoder": "--text-encoder"}


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def overrides_for(args: argparse.Namespace) -> dict:
    """The method fields the flags set; an error for a flag the method has no field for."""
    from sslmethods import recipes

    cls = recipes.method_class(args.method)
    given = {field: getattr(args, field) for field in FIELD_FLAGS if getattr(args, field) is not None}
    if "text_encoder" in given:
        given["text_encoder"] = f"text-{given['text_encoder']}"
    for field in given:
        if field not in cls.hyperparameter_names():
            fail(f"{FIELD_FLAGS[field]} does not apply to --method {args.method} ({cls.__name__} has no field "
                 f"{field!r}; its fields: {', '.join(cls.hyperparameter_names())})")
    return given


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", help="a registered name (supervised, clip, simclr, byol, dino, mae) or "
                                    "package.module:ClassName")
    p.add_argument("--model")
    p.add_argument("--batch", type=int)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--mask-ratio", type=float, default=None, help="MAE's mask_ratio (preset: 0.75)")
    p.add_argument("--decoder-depth", type=int, default=None, help="MAE's decoder_depth (preset: 8; tiny: 1)")
    p.add_argument("--text-encoder", default=None, choices=("mini", "medium"), help="CLIP's (preset: mini)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--table", action="store_true", help="the study's Figure 3: markdown, JSON and PNG in --out")
    p.add_argument("--out", default="runs/figure3", help="--table's folder (OUT/.cache: rows already measured)")
    p.add_argument("--compiled", action="store_true", help="--table: count the compiled steps (slower) instead "
                                                           "of the lowered ones")
    args = p.parse_args(argv)
    from sslmethods import figure3, step_cost

    if args.table:
        start = time.perf_counter()
        rows = figure3.table(progress=lambda r: print(f"  {figure3.label(r)} {r['model']}: "
                                                      f"{r['flops_per_step']:.3e}", file=sys.stderr, flush=True),
                             count="compiled" if args.compiled else "lowered", cache_dir=Path(args.out) / ".cache")
        figure3.write(Path(args.out), rows, time.perf_counter() - start)
        print(figure3.markdown(rows, time.perf_counter() - start))
        return
    if not (args.method and args.model and args.batch):
        fail("--method, --model and --batch are required (or --table)")
    try:
        result = step_cost.profile(args.method, args.model, args.batch, image_size=args.image_size,
                                   method_overrides=overrides_for(args))
    except (ValueError, TypeError) as error:
        fail(str(error))
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()

"""The study in miniature, on the embedded Fashion-MNIST data (what `make demo` runs).

For each pre-training method: pre-train a tiny ViT on `fmnist_objects` (curated, object-centric) with
`tools/pretrain.py`, fine-tune it for semantic segmentation of `fmnist_scenes` with `tools/finetune_seg.py`, and
fine-tune the same architecture from scratch as the baseline. `tools/report.py` then tabulates mIoU against
measured pre-training FLOPs, with the Pareto front, as a table, JSON and PNG.

    python tools/demo.py [--out runs/demo] [--methods supervised,mae,...] [--pretrain-steps N] [--seg-steps N]

Each stage is skipped when its result already exists, so an interrupted demo continues where it stopped. The
numbers are honest but tiny: a 2-block, 32-wide ViT trained for a few hundred steps on a CPU.
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
METHODS = ("supervised", "clip", "simclr", "byol", "dino", "mae")


def run_tool(*args: str, env: dict[str, str]) -> None:
    """Runs one tool in its own process (fresh compile caches and memory), echoing the command."""
    cmd = [sys.executable, str(TOOLS / args[0]), *args[1:]]
    print("\n$ " + " ".join(["python", f"tools/{args[0]}", *args[1:]]), flush=True)
    subprocess.run(cmd, check=True, env=env)


def seg_out(out: Path) -> list[str]:
    """``--out`` of a fine-tuning stage, with ``--resume`` when an interrupted one left its runs there."""
    return ["--out", str(out), *(["--resume"] if (out / "runs").exists() else [])]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {','.join(METHODS)}")
    p.add_argument("--model", default="vit-test", help="vitcore preset of the encoder")
    p.add_argument("--pretrain-steps", type=int, default=300)
    p.add_argument("--pretrain-batch", type=int, default=64)
    p.add_argument("--seg-steps", type=int, default=600)
    p.add_argument("--seg-batch", type=int, default=16)
    p.add_argument("--seg-lr", type=float, default=1e-3, help="fine-tuning learning rate (1e-4 stalls this short)")
    p.add_argument("--seg-examples", type=int, default=2000, help="fmnist_scenes training images to build")
    args = p.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        p.error(f"--methods: unknown {unknown}; expected a subset of {', '.join(METHODS)}")

    start = time.time()
    # The demo's datasets live in its own folder, so its sizes never clash with other builds under data/.
    env = {**os.environ, "FLOPWISE_DATA": str((args.out / "data").resolve())}
    run = functools.partial(run_tool, env=env)
    run("build_dataset.py", "fmnist_scenes", "--num-examples", str(args.seg_examples))
    seg = ["--dataset", "fmnist_scenes", "--steps", str(args.seg_steps), "--batch", str(args.seg_batch),
           "--image-size", "64", "--lr", str(args.seg_lr)]
    for method in methods:
        pre = args.out / "pretrain" / method
        if not (pre / "summary.json").exists():
            run("pretrain.py", "--method", method, "--model", args.model, "--dataset", "fmnist_objects",
                "--steps", str(args.pretrain_steps), "--batch", str(args.pretrain_batch), "--out", str(pre),
                "--log-every", "25", *(["--resume"] if (pre / "config.json").exists() else []))
        if not (args.out / "seg" / method / "result.json").exists():
            run("finetune_seg.py", "--encoder", str(pre), *seg_out(args.out / "seg" / method), *seg)
    if not (args.out / "seg" / "scratch" / "result.json").exists():
        run("finetune_seg.py", "--encoder", "scratch", "--model", args.model, *seg_out(args.out / "seg" / "scratch"),
            *seg)
    run("report.py", str(args.out / "seg"), "--out", str(args.out / "report"),
        "--figure3", str(TOOLS.parent / "docs" / "figure3.json"))
    print(f"\ndemo finished in {(time.time() - start) / 60:.1f} min; see {args.out / 'report'}/report.md and "
          "accuracy_vs_flops.png")


if __name__ == "__main__":
    main()

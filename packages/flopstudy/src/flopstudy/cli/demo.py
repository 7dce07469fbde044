"""The study in miniature, on the embedded Fashion-MNIST data (what `make demo` runs).

For each pre-training method: pre-train a tiny ViT on `fmnist_objects` (curated, object-centric) with
flopwise-pretrain, fine-tune it for semantic segmentation of `fmnist_scenes` with flopwise-finetune-seg, and
fine-tune the same architecture from scratch as the baseline. flopwise-report then tabulates mIoU against
measured pre-training FLOPs, with the Pareto front, as a table, JSON and PNG.

    flopwise-demo [--out runs/demo] [--methods supervised,mae,...] [--pretrain-steps N] [--seg-steps N]

(also `python tools/demo.py ...` in a checkout). Each stage runs in its own process and is skipped when its
result already exists. Interrupted? Run it again: SIGTERM/SIGINT stop the running stage after it saved a
checkpoint (exit status 3), and the same command resumes it; the report is written only once every stage is
done. The numbers are honest but tiny: a 2-block, 32-wide ViT trained for a few hundred steps on a CPU.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import flopcli
import vitcore

METHODS = ("supervised", "clip", "simclr", "byol", "dino", "mae")
FIGURE3 = Path("docs/figure3.json")  # the checkout's measured Figure 3 (make demo runs from the checkout)
# The stage commands, run as `python -m MODULE` (installed or in a checkout alike), echoed by their script name.
STAGES = {"build": ("flopdata.cli.build_dataset", "flopwise-build-dataset"),
          "pretrain": ("sslmethods.cli.pretrain", "flopwise-pretrain"),
          "finetune": ("segtransfer.cli.finetune_seg", "flopwise-finetune-seg"),
          "report": ("flopstudy.cli.report", "flopwise-report")}


class StageFailed(Exception):
    """A stage ended with an error of its own (it printed it)."""


def methods_arg(text: str) -> list[str]:
    methods = [m for m in text.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise argparse.ArgumentTypeError(f"unknown {unknown}; expected a comma-separated subset of "
                                         f"{','.join(METHODS)}")
    return methods


def build_parser() -> flopcli.ArgumentParser:
    positive = flopcli.positive_int
    p = flopcli.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--methods", type=methods_arg, default=list(METHODS),
                   help=f"comma-separated subset of {','.join(METHODS)}")
    p.add_argument("--model", default="vit-test", choices=list(vitcore.PRESETS), help="vitcore preset of the encoder")
    p.add_argument("--pretrain-steps", type=positive, default=300)
    p.add_argument("--pretrain-batch", type=positive, default=64)
    p.add_argument("--seg-steps", type=positive, default=600)
    p.add_argument("--seg-batch", type=positive, default=16)
    p.add_argument("--seg-lr", type=flopcli.positive_float, default=1e-3,
                   help="fine-tuning learning rate (1e-4 stalls this short)")
    p.add_argument("--seg-examples", type=positive, default=2000, help="fmnist_scenes training images to build")
    p.add_argument("--figure3", type=Path, default=None,
                   help=f"Figure 3 JSON for the report (default: {FIGURE3} when it exists, as in a checkout)")
    return p


def run_stage(stage: str, *args: str, env: dict[str, str]) -> None:
    """Runs one stage in its own process (fresh compile caches and memory), echoing the command. A signal to
    this process is passed on to the stage, which saves a checkpoint and exits; then `flopcli.Interrupted`."""
    module, script = STAGES[stage]
    print("\n$ " + " ".join([script, *args]), flush=True)
    child = subprocess.Popen([sys.executable, "-m", module, *args], env=env)
    try:
        status = child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGTERM)
        child.wait()
        raise flopcli.Interrupted(f"the demo stopped during `{script}` (its progress saved); run the same command "
                                  "again to resume") from None
    if status == flopcli.EXIT_INTERRUPTED:
        raise flopcli.Interrupted(f"`{script}` was interrupted (its progress saved); run the same command again to "
                                  "resume")
    if status != 0:
        raise StageFailed(f"`{script}` failed with exit status {status} (its error is above); finished stages are "
                          "kept, so the demo continues from there once it is fixed")


def body(args: argparse.Namespace) -> int:
    figure3 = args.figure3 if args.figure3 is not None else (FIGURE3 if FIGURE3.is_file() else None)
    if figure3 is not None and not figure3.is_file():
        raise flopcli.CommandError(f"--figure3 {figure3}: no such file")
    start = time.time()
    # The demo's datasets live in its own folder, so its sizes never clash with other builds under data/.
    env = {**os.environ, "FLOPWISE_DATA": str((args.out / "data").resolve())}
    try:
        run_stage("build", "fmnist_scenes", "--num-examples", str(args.seg_examples), env=env)
        seg = ["--dataset", "fmnist_scenes", "--steps", str(args.seg_steps), "--batch", str(args.seg_batch),
               "--image-size", "64", "--lr", str(args.seg_lr)]

        def seg_out(out: Path) -> list[str]:  # --resume when an interrupted fine-tune left its runs there
            return ["--out", str(out), *(["--resume"] if (out / "runs").exists() else [])]

        for method in args.methods:
            pre = args.out / "pretrain" / method
            if not (pre / "summary.json").exists():
                run_stage("pretrain", "--method", method, "--model", args.model, "--dataset", "fmnist_objects",
                          "--steps", str(args.pretrain_steps), "--batch", str(args.pretrain_batch), "--out", str(pre),
                          "--log-every", "25", *(["--resume"] if (pre / "config.json").exists() else []), env=env)
            if not (args.out / "seg" / method / "result.json").exists():
                run_stage("finetune", "--encoder", str(pre), *seg_out(args.out / "seg" / method), *seg, env=env)
        if not (args.out / "seg" / "scratch" / "result.json").exists():
            run_stage("finetune", "--encoder", "scratch", "--model", args.model,
                      *seg_out(args.out / "seg" / "scratch"), *seg, env=env)
        run_stage("report", str(args.out / "seg"), "--out", str(args.out / "report"),
                  *(["--figure3", str(figure3)] if figure3 is not None else []), env=env)
    except StageFailed as failed:
        print(f"error: {failed}", file=sys.stderr)
        return flopcli.EXIT_FAILED
    print(f"\ndemo finished in {(time.time() - start) / 60:.1f} min; see {args.out / 'report'}/report.md and "
          "accuracy_vs_flops.png")
    return flopcli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return flopcli.run(build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())

"""``flopwise <command> [arguments]``: every flopwise command under one name (each is also its own script,
``flopwise-<command>``, and ``python tools/<tool>.py`` in a checkout).

    flopwise pretrain --method mae --model vit-test --dataset fmnist_objects --steps 50 --batch 64
    flopwise sweep --config configs/demo.py --out runs/demo
    flopwise <command> --help
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

import flopcli

# command -> (module with main(argv) -> int, one line of help). Imported only when run (JAX imports are slow).
COMMANDS = {
    "build-dataset": ("flopdata.cli.build_dataset", "build a dataset (Fashion-MNIST sets, ADE20K, COCO, image folder)"),
    "contact-sheet": ("flopdata.cli.contact_sheet", "PNG contact sheet of fmnist_scenes examples"),
    "measure": ("flopmeter.cli", "FLOPs of any function (python -m flopmeter)"),
    "pretrain": ("sslmethods.cli.pretrain", "pre-train one method"),
    "profile": ("sslmethods.cli.profile_flops", "FLOPs of one training step; --table: the study's Figure 3"),
    "finetune-seg": ("segtransfer.cli.finetune_seg", "fine-tune an encoder for semantic segmentation"),
    "finetune-det": ("segtransfer.cli.finetune_det", "fine-tune an encoder as a Mask R-CNN backbone (box/mask AP)"),
    "probe-layers": ("segtransfer.cli.probe_layers", "linear segmentation probes on every layer of a frozen encoder"),
    "sweep": ("flopstudy.cli.sweep", "run a sweep of methods x budgets x backbones x datasets"),
    "sweep-flops": ("flopstudy.cli.sweep_flops", "FLOPs per step of every distinct step of a sweep config, abstractly"),
    "report": ("flopstudy.cli.report", "the study's report from a results table"),
    "plan": ("flopstudy.cli.plan", "the best configuration for a compute budget"),
    "demo": ("flopstudy.cli.demo", "the study in miniature on Fashion-MNIST"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return f"usage: flopwise <command> [arguments]\n\n{__doc__}\ncommands:\n" + "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        if not argv:
            print("error: a command is required", file=sys.stderr)
        return flopcli.EXIT_OK if argv else flopcli.EXIT_USAGE
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; expected one of {', '.join(COMMANDS)}", file=sys.stderr)
        return flopcli.EXIT_USAGE
    if from_command_line:  # argparse names the program after sys.argv[0]: usage lines read "flopwise pretrain"
        sys.argv[0] = f"{Path(sys.argv[0]).name} {name}"
    return importlib.import_module(COMMANDS[name][0]).main(rest)


if __name__ == "__main__":
    sys.exit(main())

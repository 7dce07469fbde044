"""Fine-tune an encoder for semantic segmentation with the study's protocol and write OUT/result.json.

    flopwise-finetune-seg --encoder runs/mae-vit-test --dataset fmnist_scenes --out runs/seg/mae --steps 300
    flopwise-finetune-seg --encoder scratch --model vit-test --dataset fmnist_scenes --out runs/seg/scratch
    flopwise-finetune-seg --encoder vit_b16.safetensors --model vit-b16 --dataset ade20k --out runs/seg/b16 \\
        --grid --seeds 5          # the study: 80 epochs, batch 16, 512 centre crop, LR x WD grid, median of 5

(also `python tools/finetune_seg.py ...` in a checkout). --encoder: a flopwise-pretrain run directory (with its
summary.json, unless --allow-unknown-flops), a timm-format .safetensors/.npz file (needs --model; its input
normalisation comes from the config.json that timm and the Hugging Face hub ship beside the weights, or from
--mean/--std: never assumed) or `scratch` (needs --model). Datasets are looked up under --data-dir (default
$FLOPWISE_DATA or data/); fmnist_scenes is built on first use, ade20k with `flopwise-build-dataset ade20k
--source ...`. SIGTERM checkpoints and exits with
status 3; --resume continues (finished runs of a grid are reused). Bad input: one line "error: ..." and status 2.

Every option of the study (`segtransfer.SegmentationSpec`, what a sweep's segmentation task holds) is a flag
below; without --grid the command runs one (lr, wd) with one seed. OUT/command.txt records the command that
reruns the study with every option spelled out (a sweep's task folders have one too).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import flopcli
import flopdata
import flopmeter
import runloop
import vitcore

from ..encoders import check_provenance, encoder_kind, load_encoder
from ..segmentation.device_augment import AUGMENT_MODES, device_augment_for
from ..segmentation.photometric import PHOTOMETRIC
from ..segmentation.protocol import EVAL_MODES, LR_GRID, WD_GRID, warmup_steps
from ..segmentation.spec import SegmentationSpec
from ..segmentation.study import check_out_dir, run_segmentation
from ..segmentation.transfer_data import describe_segmentation_dataset

DATASETS = {"ade20k": 512, "fmnist_scenes": 64}  # name -> default image size
# The command's defaults where they differ from the study's: one (lr, wd), one seed (--grid --seeds 5: the study).
BASE = SegmentationSpec(lrs=(1e-4,), wds=(0.05,), seeds=1)


def build_parser() -> flopcli.ArgumentParser:
    p = flopcli.ArgumentParser(description=__doc__)
    p.add_argument("--encoder", required=True, help="RUN_DIR | file.safetensors | file.npz | scratch")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--model", choices=list(vitcore.PRESETS), help="preset (timm files and scratch)")
    p.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"),
                   help="a timm file's input mean for [0, 1] pixels, when no config.json beside it says")
    p.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"), help="its input std (with --mean)")
    p.add_argument("--grid", action="store_true", help="the study's LR x WD grid; the best mIoU is reported")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--allow-unknown-flops", action="store_true",
                   help="fine-tune a run directory without summary.json (the report leaves it off the FLOP axis)")
    flopcli.add_spec_flags(
        p, SegmentationSpec, base=BASE, aliases={"lrs": ["--lr"], "wds": ["--wd"]}, required=["dataset"],
        choices={"dataset": sorted(DATASETS), "eval_mode": EVAL_MODES, "photometric": sorted(PHOTOMETRIC),
                 "augment": AUGMENT_MODES},
        exclusive=[("steps", "epochs")],
        notes={"image_size": ", ".join(f"default {size} for {name}" for name, size in DATASETS.items())})
    return p


def spec_of(args: argparse.Namespace) -> SegmentationSpec:
    """The study the flags describe (`BASE` where a flag is not given; --grid: the study's grid)."""
    if args.grid and (hasattr(args, "lrs") or hasattr(args, "wds")):
        raise flopcli.CommandError("--grid chooses the learning rate and weight decay; drop --lr/--wd")
    base = dataclasses.replace(BASE, image_size=DATASETS[args.dataset],
                               **({"lrs": LR_GRID, "wds": WD_GRID} if args.grid else {}))
    return flopcli.spec_from_flags(SegmentationSpec, args, base=base)


def check_arguments(args: argparse.Namespace) -> SegmentationSpec:
    """Every check that needs no dataset and writes nothing; returns the study's spec."""
    with flopcli.about("--encoder"):
        kind = encoder_kind(args.encoder)
    if kind != "run" and args.model is None:
        raise flopcli.CommandError(f"--encoder {args.encoder} needs --model, one of {list(vitcore.PRESETS)}")
    check_provenance(args.encoder, allow_unknown_flops=args.allow_unknown_flops,
                     allow_flag="--allow-unknown-flops")
    if (args.mean is not None or args.std is not None) and kind != "timm":
        raise flopcli.CommandError(f"--mean/--std: only a timm weights file takes a normalisation; --encoder "
                                   f"{args.encoder} has its own (a run records it, scratch uses its preset's)")
    model = args.model
    if kind != "scratch":  # read the weights once now: a corrupt or foreign file is named before any work
        with flopcli.about("--encoder"):
            _, info = load_encoder(args.encoder, model=args.model, mean=args.mean, std=args.std,
                                   normalisation_flags="--mean/--std")
        model = model or info.model  # a run's own preset: --image-size is checked against it too
    spec = spec_of(args)
    if model in vitcore.PRESETS:
        with flopcli.about(f"--image-size {spec.image_size}" if hasattr(args, "image_size") else "--model"):
            config = vitcore.get_config(model, image_size=spec.image_size)
        # before compiling: a batch far beyond the devices' memory would end in XLA aborting the process
        runloop.check_fits_memory(spec.batch * vitcore.example_memory_floor(config), runloop.make_mesh(),
                                  option=f"--batch {spec.batch}")
    if spec.tensorboard:
        runloop.check_tensorboard("--tensorboard")
    with flopcli.about("--out"):
        check_out_dir(args.out, resume=args.resume, resume_flag="--resume")
    return spec


def body(args: argparse.Namespace) -> int:
    spec = check_arguments(args)
    with flopcli.about("--dataset"):
        info = describe_segmentation_dataset(flopdata.resolve(spec.dataset, data_dir=args.data_dir))
    with flopcli.about("--augment"):
        device_augment_for(spec.augment, photometric=spec.photometric, directory=str(info.directory), split="train",
                           crop=spec.image_size)
    steps = spec.total_steps(info.train_size)
    with flopcli.about("--warmup"):
        warmup = warmup_steps(steps) if spec.warmup is None else spec.warmup
        if warmup >= steps:
            raise ValueError(f"{warmup} steps: expected fewer than the run's {steps}")
    runloop.enable_compilation_cache()  # $FLOPWISE_JAX_CACHE, else ~/.cache/flopwise/jax
    print(f"{spec.dataset}: {info.train_size} train images, {info.num_classes} classes, {steps} steps "
          f"(warmup {warmup}) at batch {spec.batch}", file=sys.stderr)
    result = run_segmentation(spec, encoder=args.encoder, out_dir=args.out, model=args.model,
                              data_dir=args.data_dir, mean=args.mean, std=args.std, resume=args.resume,
                              resume_flag="--resume",
                              allow_unknown_flops=args.allow_unknown_flops, allow_flag="--allow-unknown-flops")
    if result.get("status") == "preempted":
        raise flopcli.Interrupted(f"fine-tuning stopped (checkpoint saved in {args.out}); continue it with the same "
                                  "command and --resume")
    print(json.dumps({k: v for k, v in result.items() if k != "iou"}, indent=2))
    return flopcli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    flopmeter.reuse_host_memory()  # before any JAX work: XLA:CPU reuses its step buffers (docs/benchmarks.md)
    return flopcli.run(build_parser(), body, argv, errors=(runloop.NonFiniteError,))


if __name__ == "__main__":
    sys.exit(main())

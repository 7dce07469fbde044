"""Fine-tune an encoder as the backbone of a Mask R-CNN (the study's COCO protocol) and write OUT/result.json.

    flopwise-finetune-det --encoder runs/mae-vit-test --dataset fmnist_scenes --out runs/det/mae --steps 300
    flopwise-finetune-det --encoder scratch --model vit-test --dataset fmnist_scenes --out runs/det/scratch
    flopwise-finetune-det --encoder vit_b16.safetensors --model vit-b16 --dataset coco_instances \\
        --out runs/det/b16        # the study: ViTDet Mask R-CNN, 22K steps, batch 64, 1024^2, LSJ, box AP

(also `python tools/finetune_det.py ...` in a checkout). --encoder: a flopwise-pretrain run directory, a timm-format
.safetensors/.npz file (needs --model) or `scratch` (needs --model). Defaults per dataset: coco_instances trains the
study's "vitdet" detector at 1024 px, fmnist_scenes the "tiny" one at 64 px; the recipe is the study's (AdamW lr 1e-4,
wd 0.1, layer decay 0.7, drop path 0.1, warmup then x0.1 at 8/9 and 26/27 of the run) at the given length. Datasets
are looked up under --data-dir (default $FLOPWISE_DATA or data/); fmnist_scenes is built on first use, coco_instances
with `flopwise-build-dataset coco_instances --source ...`. Writes OUT/runs/seed<s>/ (checkpoints, metrics.jsonl,
run.json) and OUT/result.json (box AP as the headline score, mask AP, the COCO breakdown, FLOPs, the encoder's
provenance). SIGTERM checkpoints and exits with status 3; --resume continues. Bad input: one line "error: ..." and
status 2.

Every option of the study (`segtransfer.DetectionSpec`, what a sweep's detection task holds) is a flag below
(--scale-range MIN MAX is --min-scale MIN --max-scale MAX). OUT/command.txt records the command that reruns the
study with every option spelled out (a sweep's detection task folders have one too).
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

from ..detection import DETECTOR_PRESETS, check_study_dir, describe_detection_dataset
from ..detection.spec import DetectionSpec
from ..detection.study import run_detection
from ..encoders import encoder_kind, load_encoder, timm_normalisation

# dataset -> (image size, detector preset, padded objects per image): the command's defaults per dataset
DATASETS = {"coco_instances": (1024, "vitdet", 100), "fmnist_scenes": (64, "tiny", 8)}
BASE = DetectionSpec()


def build_parser() -> flopcli.ArgumentParser:
    p = flopcli.ArgumentParser(description=__doc__)
    p.add_argument("--encoder", required=True, help="RUN_DIR | file.safetensors | file.npz | scratch")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--model", help="vitcore preset (timm files and scratch), e.g. vit-test, vit-b16")
    p.add_argument("--scale-range", type=flopcli.positive_float, nargs=2, metavar=("MIN", "MAX"),
                   help="large-scale jitter of training: --min-scale and --max-scale in one flag")
    p.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"),
                   help="a timm file's input mean for [0, 1] pixels, when no config.json beside it says")
    p.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"), help="its input std (with --mean)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--resume", action="store_true")
    per_dataset = {name: dict(zip(("image_size", "detector", "max_objects"), values, strict=True))
                   for name, values in DATASETS.items()}
    flopcli.add_spec_flags(
        p, DetectionSpec, base=BASE, required=["dataset"],
        choices={"dataset": sorted(DATASETS), "detector": sorted(DETECTOR_PRESETS)},
        notes={field: ", ".join(f"default {values[field]} for {name}" for name, values in per_dataset.items())
               for field in ("image_size", "detector", "max_objects")})
    return p


def spec_of(args: argparse.Namespace) -> DetectionSpec:
    """The study the flags describe (the dataset's defaults where a flag is not given)."""
    if args.scale_range is not None:
        if hasattr(args, "min_scale") or hasattr(args, "max_scale"):
            raise flopcli.CommandError("--scale-range: give it or --min-scale/--max-scale, not both")
        args.min_scale, args.max_scale = args.scale_range
    size, detector, max_objects = DATASETS[args.dataset]
    base = dataclasses.replace(BASE, image_size=size, detector=detector, max_objects=max_objects)
    return flopcli.spec_from_flags(DetectionSpec, args, base=base)


def check_arguments(args: argparse.Namespace) -> DetectionSpec:
    """Every check that needs no dataset and writes nothing (`flopcli.CommandError` naming the flag); returns
    the study's spec."""
    with flopcli.about("--encoder"):
        kind = encoder_kind(args.encoder)
    if kind != "run" and args.model not in vitcore.PRESETS:
        raise flopcli.CommandError(f"--encoder {args.encoder} needs --model, one of {list(vitcore.PRESETS)}")
    if (args.mean is not None or args.std is not None) and kind != "timm":
        raise flopcli.CommandError(f"--mean/--std: only a timm weights file takes a normalisation; --encoder "
                                   f"{args.encoder} has its own (a run records it, scratch uses its preset's)")
    if kind == "timm":
        with flopcli.about("--encoder"):
            timm_normalisation(args.encoder, mean=args.mean, std=args.std, flags="--mean/--std")
    spec = spec_of(args)
    model = args.model
    if kind == "run" and model is None:  # the run's own preset: --image-size and --batch are checked against it
        with flopcli.about("--encoder"):
            model = load_encoder(args.encoder)[1].model
    if model in vitcore.PRESETS:
        with flopcli.about(f"--image-size {spec.image_size}" if hasattr(args, "image_size") else "--model"):
            config = vitcore.get_config(model, image_size=spec.image_size)
        # before compiling: a batch far beyond the devices' memory would end in XLA aborting the process
        runloop.check_fits_memory(spec.batch * vitcore.example_memory_floor(config), runloop.make_mesh(),
                                  option=f"--batch {spec.batch}")
    with flopcli.about("--out"):
        check_study_dir(args.out, resume=args.resume, resume_flag="--resume")
    return spec


def body(args: argparse.Namespace) -> int:
    spec = check_arguments(args)
    with flopcli.about("--dataset"):
        info = describe_detection_dataset(flopdata.resolve(spec.dataset, data_dir=args.data_dir))
    recipe = spec.run_config(info).recipe
    print(f"{spec.dataset}: {info.train_size} train images, {info.num_classes} classes, {info.eval_split} "
          f"{info.split_sizes[info.eval_split]} images; {recipe.steps} steps (warmup {recipe.warmup_steps}, decays "
          f"at {list(recipe.milestones)}) at batch {recipe.batch_size}, {spec.image_size} px", file=sys.stderr)
    result = run_detection(spec, encoder=args.encoder, out_dir=args.out, model=args.model, data_dir=args.data_dir,
                           mean=args.mean, std=args.std, resume=args.resume, resume_flag="--resume")
    if result.get("status") == "preempted":
        raise flopcli.Interrupted(f"fine-tuning stopped (checkpoint saved in {args.out}); continue it with the same "
                                  "command and --resume")
    print(json.dumps(result, indent=2))
    return flopcli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    flopmeter.reuse_host_memory()  # before any JAX work: XLA:CPU reuses its step buffers (docs/benchmarks.md)
    return flopcli.run(build_parser(), body, argv, errors=(runloop.NonFiniteError,))


if __name__ == "__main__":
    sys.exit(main())

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
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import flopcli
import flopdata
import runloop
import vitcore

from ..detection import (
    DETECTOR_PRESETS,
    STUDY_RECIPE,
    DetectionRunConfig,
    check_study_dir,
    describe_detection_dataset,
    detection_recipe,
    detection_study,
)
from ..detection import detector_config as make_detector_config
from ..encoders import encoder_kind, load_encoder, timm_normalisation

# dataset -> (image size, detector preset, padded objects per image)
DATASETS = {"coco_instances": (1024, "vitdet", 100), "fmnist_scenes": (64, "tiny", 8)}


def build_parser() -> flopcli.ArgumentParser:
    p = flopcli.ArgumentParser(description=__doc__)
    p.add_argument("--encoder", required=True, help="RUN_DIR | file.safetensors | file.npz | scratch")
    p.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--model", help="vitcore preset (timm files and scratch), e.g. vit-test, vit-b16")
    p.add_argument("--steps", type=flopcli.positive_int, default=STUDY_RECIPE.steps, help="default 22000 (the study)")
    p.add_argument("--batch", type=flopcli.positive_int, default=STUDY_RECIPE.batch_size,
                   help="global batch (default 64)")
    p.add_argument("--image-size", type=flopcli.positive_int, help="default 1024 (coco_instances) / 64 (fmnist_scenes)")
    p.add_argument("--detector", choices=sorted(DETECTOR_PRESETS), help="default vitdet (coco) / tiny (fmnist)")
    p.add_argument("--lr", type=flopcli.non_negative_float, default=STUDY_RECIPE.peak_lr)
    p.add_argument("--wd", type=flopcli.non_negative_float, default=STUDY_RECIPE.weight_decay)
    p.add_argument("--layer-decay", type=flopcli.non_negative_float, default=STUDY_RECIPE.layer_decay,
                   help="layer-wise LR decay in (0, 1] (1: none); default 0.7")
    p.add_argument("--drop-path", type=flopcli.non_negative_float, default=STUDY_RECIPE.drop_path)
    p.add_argument("--warmup", type=int, help="warmup steps (default: the study's 250/22000 of the run)")
    p.add_argument("--seeds", type=flopcli.positive_int, default=1, help="fine-tuning seeds; the median is reported")
    p.add_argument("--max-objects", type=flopcli.positive_int, help="objects padded per image (default 100 / 8)")
    p.add_argument("--truncate", action="store_true", help="keep the first --max-objects of a crowded image")
    p.add_argument("--scale-range", type=flopcli.non_negative_float, nargs=2, default=(0.1, 2.0),
                   metavar=("MIN", "MAX"),
                   help="large-scale jitter of training (default 0.1 2.0, ViTDet's)")
    p.add_argument("--eval-batch", type=flopcli.positive_int, default=8)
    p.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"),
                   help="a timm file's input mean for [0, 1] pixels, when no config.json beside it says")
    p.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"), help="its input std (with --mean)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--checkpoint-every", type=flopcli.positive_int, default=500)
    p.add_argument("--log-every", type=flopcli.positive_int, default=50)
    p.add_argument("--workers", type=flopcli.non_negative_int, default=0, help="grain decoding worker processes")
    return p


def check_arguments(args: argparse.Namespace) -> None:
    """Every check that needs no dataset and writes nothing (`flopcli.CommandError` naming the flag)."""
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
    if args.layer_decay is not None and not 0 < args.layer_decay <= 1:
        raise flopcli.CommandError(f"--layer-decay {args.layer_decay}: expected a value in (0, 1]")
    if args.warmup is not None and not 0 <= args.warmup < args.steps:
        raise flopcli.CommandError(f"--warmup {args.warmup}: expected 0 <= warmup < --steps {args.steps}")
    if not 0 < args.scale_range[0] <= args.scale_range[1]:
        raise flopcli.CommandError(
            f"--scale-range {args.scale_range[0]} {args.scale_range[1]}: expected 0 < MIN <= MAX")
    model = args.model
    if kind == "run" and model is None:  # the run's own preset: --image-size and --batch are checked against it
        with flopcli.about("--encoder"):
            model = load_encoder(args.encoder)[1].model
    if model in vitcore.PRESETS:
        size = args.image_size or DATASETS[args.dataset][0]
        with flopcli.about(f"--image-size {size}" if args.image_size else "--model"):
            config = vitcore.get_config(model, image_size=size)
        # before compiling: a batch far beyond the devices' memory would end in XLA aborting the process
        runloop.check_fits_memory(args.batch * vitcore.example_memory_floor(config), runloop.make_mesh(),
                                  option=f"--batch {args.batch}")
    with flopcli.about("--out"):
        check_study_dir(args.out, resume=args.resume, resume_flag="--resume")


def body(args: argparse.Namespace) -> int:
    check_arguments(args)
    size, preset, max_objects = DATASETS[args.dataset]
    with flopcli.about("--dataset"):
        info = describe_detection_dataset(flopdata.resolve(args.dataset, data_dir=args.data_dir))
    image_size = args.image_size or size
    recipe = detection_recipe(steps=args.steps, batch_size=args.batch, image_size=image_size, lr=args.lr,
                              wd=args.wd, layer_decay=None if args.layer_decay == 1.0 else args.layer_decay,
                              warmup=args.warmup, drop_path=args.drop_path)
    detector = make_detector_config(args.detector or preset, num_classes=info.num_classes, image_size=image_size)
    config = DetectionRunConfig(
        dataset_dir=info.directory, detector=detector, recipe=recipe, eval_split=info.eval_split,
        max_objects=args.max_objects or max_objects, truncate=args.truncate, min_scale=args.scale_range[0],
        max_scale=args.scale_range[1], eval_batch_size=args.eval_batch,
        checkpoint_every=args.checkpoint_every, log_every=args.log_every, workers=args.workers,
        encoder_mean=None if args.mean is None else tuple(args.mean),
        encoder_std=None if args.std is None else tuple(args.std))
    print(f"{args.dataset}: {info.train_size} train images, {info.num_classes} classes, {info.eval_split} "
          f"{info.split_sizes[info.eval_split]} images; {recipe.steps} steps (warmup {recipe.warmup_steps}, decays "
          f"at {list(recipe.milestones)}) at batch {recipe.batch_size}, {image_size} px", file=sys.stderr)
    result = detection_study(config, encoder=args.encoder, out_dir=args.out, dataset=args.dataset, model=args.model,
                             seeds=range(args.seeds), resume=args.resume, resume_flag="--resume")
    if result.get("status") == "preempted":
        raise flopcli.Interrupted(f"fine-tuning stopped (checkpoint saved in {args.out}); continue it with the same "
                                  "command and --resume")
    print(json.dumps(result, indent=2))
    return flopcli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return flopcli.run(build_parser(), body, argv, errors=(runloop.NonFiniteError,))


if __name__ == "__main__":
    sys.exit(main())

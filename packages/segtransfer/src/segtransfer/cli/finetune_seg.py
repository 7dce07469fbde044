"""Fine-tune an encoder for semantic segmentation with the study's protocol and write OUT/result.json.

    flopwise-finetune-seg --encoder runs/mae-vit-test --dataset fmnist_scenes --out runs/seg/mae --steps 300
    flopwise-finetune-seg --encoder scratch --model vit-test --dataset fmnist_scenes --out runs/seg/scratch
    flopwise-finetune-seg --encoder vit_b16.safetensors --model vit-b16 --dataset ade20k --out runs/seg/b16 \\
        --grid --seeds 5          # the study: 80 epochs, batch 16, 512 centre crop, LR x WD grid, median of 5

(also `python tools/finetune_seg.py ...` in a checkout). --encoder: a flopwise-pretrain run directory (with its
summary.json, unless --allow-unknown-flops), a timm-format .safetensors/.npz file (needs --model) or `scratch`
(needs --model). Datasets are looked up under --data-dir (default $FLOPWISE_DATA or data/); fmnist_scenes is
built on first use, ade20k with `flopwise-build-dataset ade20k --source ...`. SIGTERM checkpoints and exits with
status 3; --resume continues (finished runs of a grid are reused). Bad input: one line "error: ..." and status 2.
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

from .. import protocol
from ..encoders import check_provenance, encoder_kind, load_encoder
from ..protocol import FinetuneConfig, finetune_steps
from ..study import check_out_dir, run_study, study_grid
from ..transfer_data import describe_segmentation_dataset

DATASETS = {"ade20k": 512, "fmnist_scenes": 64}  # name -> default image size


def build_parser() -> flopcli.ArgumentParser:
    positive = flopcli.positive_int
    p = flopcli.ArgumentParser(description=__doc__)
    p.add_argument("--encoder", required=True, help="RUN_DIR | file.safetensors | file.npz | scratch")
    p.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--model", choices=list(vitcore.PRESETS), help="preset (timm files and scratch)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=flopcli.positive_float, help=f"default {protocol.STUDY_EPOCHS} (the study)")
    length.add_argument("--steps", type=positive)
    p.add_argument("--batch", type=positive, default=protocol.STUDY_BATCH_SIZE)
    p.add_argument("--image-size", type=positive, default=None, help="default 512 (ade20k) / 64 (fmnist_scenes)")
    p.add_argument("--lr", type=flopcli.positive_float, default=None, help="default 1e-4")
    p.add_argument("--wd", type=flopcli.non_negative_float, default=None, help="default 0.05")
    p.add_argument("--grid", action="store_true", help="the study's LR x WD grid; the best mIoU is reported")
    p.add_argument("--seeds", type=positive, default=1, help="repeat the chosen config; the median is reported")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--allow-unknown-flops", action="store_true",
                   help="fine-tune a run directory without summary.json (the report leaves it off the FLOP axis)")
    p.add_argument("--eval-mode", choices=protocol.EVAL_MODES, default="center_crop")
    p.add_argument("--checkpoint-every", type=positive, default=500)
    p.add_argument("--log-every", type=positive, default=50)
    p.add_argument("--workers", type=flopcli.non_negative_int, default=0, help="grain decoding worker processes")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard event files")
    return p


def check_arguments(args: argparse.Namespace) -> None:
    """Every check that needs no dataset and writes nothing."""
    with flopcli.about("--encoder"):
        kind = encoder_kind(args.encoder)
    if kind != "run" and args.model is None:
        raise flopcli.CommandError(f"--encoder {args.encoder} needs --model, one of {list(vitcore.PRESETS)}")
    check_provenance(args.encoder, allow_unknown_flops=args.allow_unknown_flops,
                     allow_flag="--allow-unknown-flops")
    model = args.model
    if kind != "scratch":  # read the weights once now: a corrupt or foreign file is named before any work
        with flopcli.about("--encoder"):
            _, info = load_encoder(args.encoder, model=args.model)
        model = model or info.model  # a run's own preset: --image-size is checked against it too
    if args.grid and (args.lr is not None or args.wd is not None):
        raise flopcli.CommandError("--grid chooses the learning rate and weight decay; drop --lr/--wd")
    if model in vitcore.PRESETS:
        size = args.image_size or DATASETS[args.dataset]
        with flopcli.about(f"--image-size {size}" if args.image_size else "--model"):
            config = vitcore.get_config(model, image_size=size)
        # before compiling: a batch far beyond the devices' memory would end in XLA aborting the process
        runloop.check_fits_memory(args.batch * vitcore.example_memory_floor(config), runloop.make_mesh(),
                                  option=f"--batch {args.batch}")
    if args.tensorboard:
        runloop.check_tensorboard("--tensorboard")
    with flopcli.about("--out"):
        check_out_dir(args.out, resume=args.resume, resume_flag="--resume")


def body(args: argparse.Namespace) -> int:
    check_arguments(args)
    with flopcli.about("--dataset"):
        info = describe_segmentation_dataset(flopdata.resolve(args.dataset, data_dir=args.data_dir))
    steps = finetune_steps(batch_size=args.batch, dataset_size=info.train_size, steps=args.steps,
                           epochs=None if args.steps else (args.epochs or protocol.STUDY_EPOCHS))
    base = FinetuneConfig(
        dataset_dir=info.directory, num_classes=info.num_classes, steps=steps, batch_size=args.batch,
        lr=1e-4 if args.lr is None else args.lr, wd=0.05 if args.wd is None else args.wd, eval_mode=args.eval_mode,
        image_size=args.image_size or DATASETS[args.dataset], eval_split=info.eval_split,
        checkpoint_every=args.checkpoint_every, log_every=args.log_every, workers=args.workers,
        tensorboard=args.tensorboard)
    runloop.enable_compilation_cache()  # $FLOPWISE_JAX_CACHE, else ~/.cache/flopwise/jax
    print(f"{args.dataset}: {info.train_size} train images, {info.num_classes} classes, {steps} steps "
          f"(warmup {base.warmup_steps}) at batch {args.batch}", file=sys.stderr)
    grid = study_grid(protocol.LR_GRID, protocol.WD_GRID) if args.grid else None
    result = run_study(base, encoder=args.encoder, out_dir=args.out, dataset=args.dataset, model=args.model,
                       grid=grid, seeds=range(args.seeds), resume=args.resume, resume_flag="--resume",
                       allow_unknown_flops=args.allow_unknown_flops, allow_flag="--allow-unknown-flops")
    if result.get("status") == "preempted":
        raise flopcli.Interrupted(f"fine-tuning stopped (checkpoint saved in {args.out}); continue it with the same "
                                  "command and --resume")
    print(json.dumps({k: v for k, v in result.items() if k != "iou"}, indent=2))
    return flopcli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return flopcli.run(build_parser(), body, argv, errors=(runloop.NonFiniteError,))


if __name__ == "__main__":
    sys.exit(main())

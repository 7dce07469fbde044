"""Fine-tune an encoder for semantic segmentation with the study's protocol and write DIR/result.json.

    python tools/finetune_seg.py --encoder runs/mae-vit-test --dataset fmnist_scenes --out runs/seg/mae --steps 300
    python tools/finetune_seg.py --encoder scratch --model vit-test --dataset fmnist_scenes --out runs/seg/scratch
    python tools/finetune_seg.py --encoder vit_b16.safetensors --model vit-b16 --dataset ade20k --out runs/seg/b16 \\
        --grid --seeds 5          # the study: 80 epochs, batch 16, 512 centre crop, LR x WD grid, median of 5

--encoder: a tools/pretrain.py run directory, a timm-format .safetensors/.npz file (needs --model) or `scratch`
(needs --model). Datasets are looked up under --data-dir (default $FLOPWISE_DATA or data/); fmnist_scenes is
built on first use, ade20k with `python tools/build_dataset.py ade20k --source ...`. SIGTERM checkpoints and
exits; --resume continues (finished runs of a grid are reused).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DATASETS = {"ade20k": 512, "fmnist_scenes": 64}  # name -> default image size


def main(argv: list[str] | None = None) -> dict:
    import flopdata
    import runloop
    import segtransfer as st
    import vitcore
    from segtransfer import protocol

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", required=True, help="RUN_DIR | file.safetensors | file.npz | scratch")
    p.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--model", choices=list(vitcore.PRESETS), help="preset (timm files and scratch)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=float, help=f"default {protocol.STUDY_EPOCHS} (the study)")
    length.add_argument("--steps", type=int)
    p.add_argument("--batch", type=int, default=protocol.STUDY_BATCH_SIZE)
    p.add_argument("--image-size", type=int, default=None, help="default 512 (ade20k) / 64 (fmnist_scenes)")
    p.add_argument("--lr", type=float, default=None, help="default 1e-4")
    p.add_argument("--wd", type=float, default=None, help="default 0.05")
    p.add_argument("--grid", action="store_true", help="the study's LR x WD grid; the best mIoU is reported")
    p.add_argument("--seeds", type=int, default=1, help="repeat the chosen config; the median is reported")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--eval-mode", choices=protocol.EVAL_MODES, default="center_crop")
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--workers", type=int, default=0, help="grain decoding worker processes")
    args = p.parse_args(argv)

    try:
        kind = st.encoder_kind(args.encoder)
    except ValueError as error:
        p.error(f"--encoder: {error}")
    if kind != "run" and args.model is None:
        p.error(f"--encoder {args.encoder} needs --model, one of {list(vitcore.PRESETS)}")
    if args.grid and (args.lr is not None or args.wd is not None):
        p.error("--grid chooses the learning rate and weight decay; drop --lr/--wd")
    for name in ("batch", "seeds", "steps", "image_size", "checkpoint_every", "log_every"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} {value}: expected a positive integer")
    if args.epochs is not None and not args.epochs > 0:
        p.error(f"--epochs {args.epochs}: expected > 0")
    if args.out.joinpath("result.json").exists() and not args.resume:
        p.error(f"--out {args.out} already holds result.json; pass --resume or choose another --out")
    try:
        info = st.describe_segmentation_dataset(flopdata.resolve(args.dataset, data_dir=args.data_dir))
    except ValueError as error:
        p.error(f"--dataset: {error}")
    steps = st.finetune_steps(batch_size=args.batch, dataset_size=info.train_size, steps=args.steps,
                              epochs=None if args.steps else (args.epochs or protocol.STUDY_EPOCHS))
    try:
        base = st.FinetuneConfig(
            dataset_dir=info.directory, num_classes=info.num_classes, steps=steps, batch_size=args.batch,
            lr=1e-4 if args.lr is None else args.lr, wd=0.05 if args.wd is None else args.wd, eval_mode=args.eval_mode,
            image_size=args.image_size or DATASETS[args.dataset], eval_split=info.eval_split,
            checkpoint_every=args.checkpoint_every, log_every=args.log_every, workers=args.workers)
    except ValueError as error:
        p.error(str(error))
    runloop.enable_compilation_cache()  # $FLOPWISE_JAX_CACHE, else ~/.cache/flopwise/jax
    print(f"{args.dataset}: {info.train_size} train images, {info.num_classes} classes, {steps} steps "
          f"(warmup {base.warmup_steps}) at batch {args.batch}", file=sys.stderr)
    grid = st.study_grid(protocol.LR_GRID, protocol.WD_GRID) if args.grid else None
    result = st.run_study(base, encoder=args.encoder, out_dir=args.out, dataset=args.dataset, model=args.model,
                          grid=grid, seeds=range(args.seeds), resume=args.resume, resume_flag="--resume")
    print(json.dumps({k: v for k, v in result.items() if k != "iou"}, indent=2))
    return result


if __name__ == "__main__":
    main()

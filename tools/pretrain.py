"""Pre-train one method: the one command a user runs.

    python tools/pretrain.py --method dino --model vit-test --dataset fmnist_objects --steps 50 --batch 64
    python tools/pretrain.py --method mae --model vit-b16 --dataset /data/imagenet/1.0.0 --preset paper:i1k \\
        --steps 250000 --batch 4096 --out runs/mae-b16 --resume

Writes config.json, metrics.jsonl, checkpoints/, encoder.eqx/.json and summary.json under --out. The embedded
Fashion-MNIST sets are built on first use; other datasets are a name built by tools/build_dataset.py or a TFDS
directory. SIGTERM checkpoints and exits; --resume continues from the last checkpoint.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def method_arg(text: str) -> str:  # a registered name or 'package.module:ClassName', checked before any work
    from sslmethods.registry import get_method

    try:
        return get_method(text) and text
    except (ValueError, TypeError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: list[str] | None = None) -> dict:
    import flopdata
    import runloop
    import vitcore
    from sslmethods import overrides, presets, recipes, trainer
    from sslmethods.data import PretrainData, pretrain_loader

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", required=True, type=method_arg, metavar="NAME|MODULE:CLASS",
                   help="supervised, clip, simclr, byol, dino, mae or the import path of an AbstractMethod subclass")
    p.add_argument("--model", required=True, choices=list(vitcore.PRESETS))
    p.add_argument("--dataset", required=True, help="fmnist_objects, fmnist_scenes, a built name or a TFDS dir")
    p.add_argument("--steps", type=int, required=True, help="may grow on --resume (the schedules are refitted)")
    p.add_argument("--batch", type=int, required=True, help="global batch size")
    p.add_argument("--out", default=None, help="run directory (default runs/<method>-<model>-<dataset>)")
    p.add_argument("--preset", default="demo", choices=presets.PRESET_NAMES)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--resume-from", type=int, metavar="STEP", help="with --resume: from this kept checkpoint")
    p.add_argument("--image-size", type=int, default=None, help="default: the model preset's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--eval-every", type=int, default=0, help="kNN monitor interval (0: at the end only)")
    p.add_argument("--workers", type=int, default=0, help="grain decoding worker processes")
    p.add_argument("--fsdp", action="store_true", help="shard parameters and optimizer state over devices")
    p.add_argument("--skip-nonfinite", action="store_true", help="drop non-finite updates (at most 10 in a row)")
    p.add_argument("--hardware", default=None, help="flopmeter hardware name for the CO2 estimate")
    p.add_argument("--watts", type=float, default=None, help="watts per device for the CO2 estimate")
    p.add_argument("--set", nargs="+", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override any method./optim./model. field, e.g. optim.lr=1e-3 method.mask_ratio=0.65")
    args = p.parse_args(argv)
    try:  # before anything is built: an unknown field or a wrong type names the field and the valid ones
        chosen = overrides.parse_overrides(args.set, recipes.method_class(args.method))
    except ValueError as error:
        p.error(f"--set {error}")

    runloop.initialize_distributed()
    runloop.enable_compilation_cache()  # $FLOPWISE_JAX_CACHE, else ~/.cache/flopwise/jax
    out = args.out or f"runs/{args.method}-{args.model}-{Path(args.dataset).name}"
    flags = runloop.OptionNames(skip_nonfinite="--skip-nonfinite", resume="--resume", resume_from="--resume-from STEP")
    try:  # every cheap check before the dataset is built or the run directory created
        runloop.check_batch_size(args.batch, runloop.make_mesh())
        cfg = trainer.TrainConfig(out_dir=out, seed=args.seed, resume=args.resume, loop=runloop.LoopConfig(
            steps=args.steps, batch_size=args.batch, checkpoint_every=args.checkpoint_every, log_every=args.log_every,
            eval_every=args.eval_every, hardware=args.hardware, watts=args.watts, resume_from=args.resume_from,
            param_sharding="fsdp" if args.fsdp else "replicate", option_names=flags,
            on_nonfinite="skip" if args.skip_nonfinite else "raise"))
    except ValueError as error:
        p.error(str(error))
    if not args.resume and runloop.holds_run(out):
        p.error(f"--out {out} already holds a run; pass --resume to continue it or choose another --out")
    try:
        directory = flopdata.resolve(args.dataset)
    except ValueError as error:
        p.error(f"--dataset: {error}")
    kwargs = chosen.build_kwargs()
    kwargs["method_overrides"] = recipes.dataset_overrides(args.method, directory) | kwargs["method_overrides"]
    method, optim = recipes.build_method(args.method, args.model, preset=args.preset, total_steps=args.steps,
                                         image_size=args.image_size, **kwargs)
    size = vitcore.image_hw(method.backbone.image_size)[0]  # --image-size or model.image_size win
    data = iter(pretrain_loader(PretrainData(str(directory), batch_size=args.batch, image_size=size,
                                             seed=args.seed, worker_count=args.workers)))
    summary, _ = trainer.train(
        method, optim, data, cfg, knn=recipes.knn_splits(directory, image_size=size),
        run_info={"method": args.method, "model": args.model, "dataset": args.dataset, "preset": args.preset,
                  "image_size": size, "dataset_dir": str(directory), "method_repr": repr(method),
                  "overrides": list(chosen.assignments())})
    print(json.dumps(summary.to_json(), indent=2))
    return summary.to_json()


if __name__ == "__main__":
    main()

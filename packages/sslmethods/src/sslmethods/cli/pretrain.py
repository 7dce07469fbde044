"""Pre-train one method: the one command a user runs.

    flopwise-pretrain --method dino --model vit-test --dataset fmnist_objects --steps 50 --batch 64
    flopwise-pretrain --method mae --model vit-b16 --dataset /data/imagenet/1.0.0 --preset paper:i1k \\
        --steps 250000 --batch 4096 --out runs/mae-b16 --resume

(also `python tools/pretrain.py ...` in a checkout). Writes config.json, metrics.jsonl, checkpoints/,
encoder.eqx/.json and summary.json under --out. The embedded Fashion-MNIST sets are built on first use; other
datasets are a name built by flopwise-build-dataset or a TFDS directory. SIGTERM checkpoints and exits with
status 3; --resume continues from the last checkpoint. Bad input: one line "error: ..." and status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import flopcli
import flopdata
import flopmeter
import runloop
import vitcore

from ..methods.registry import get_method
from ..pretrain import overrides, presets, recipes, trainer
from ..pretrain.data import PretrainData, pretrain_loader
from ..pretrain.heldout import heldout_set

FLAGS = runloop.OptionNames(skip_nonfinite="--skip-nonfinite", resume="--resume", resume_from="--resume-from STEP",
                            steps="--steps")


def method_arg(text: str) -> str:
    """A registered name or 'package.module:ClassName', checked while parsing."""
    try:
        get_method(text)
    except (ValueError, TypeError) as error:  # chained: --debug shows the user's module failing
        raise argparse.ArgumentTypeError(str(error)) from error
    return text


def build_parser() -> flopcli.ArgumentParser:
    positive, count = flopcli.positive_int, flopcli.non_negative_int
    p = flopcli.ArgumentParser(description=__doc__)
    p.add_argument("--method", required=True, type=method_arg, metavar="NAME|MODULE:CLASS",
                   help="supervised, clip, simclr, byol, dino, mae or the import path of an AbstractMethod subclass")
    p.add_argument("--model", required=True, choices=list(vitcore.PRESETS))
    p.add_argument("--dataset", required=True, help="fmnist_objects, fmnist_scenes, a built name or a TFDS dir")
    p.add_argument("--steps", type=positive, required=True, help="may grow on --resume (the schedules are refitted)")
    p.add_argument("--batch", type=positive, required=True, help="global batch size")
    p.add_argument("--out", default=None, help="run directory (default runs/<method>-<model>-<dataset>)")
    p.add_argument("--preset", default="demo", choices=presets.PRESET_NAMES)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--resume-from", type=count, metavar="STEP", help="with --resume: from this kept checkpoint")
    p.add_argument("--image-size", type=positive, default=None, help="default: the model preset's")
    p.add_argument("--seed", type=count, default=0)
    p.add_argument("--checkpoint-every", type=positive, default=500)
    p.add_argument("--log-every", type=positive, default=10)
    p.add_argument("--eval-every", type=count, default=0, help="kNN monitor interval (0: at the end only)")
    p.add_argument("--workers", type=count, default=0, help="grain decoding worker processes")
    p.add_argument("--fsdp", action="store_true", help="shard parameters and optimizer state over devices")
    p.add_argument("--skip-nonfinite", action="store_true", help="drop non-finite updates (at most 10 in a row)")
    p.add_argument("--hardware", default=None, help="flopmeter hardware name for the CO2 estimate")
    p.add_argument("--watts", type=flopcli.positive_float, default=None, help="watts per device for the CO2 estimate")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard events to OUT/tensorboard")
    p.add_argument("--set", nargs="+", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override any method./optim./model. field, e.g. optim.lr=1e-3 method.mask_ratio=0.65")
    return p


def check_image_size(model: str, image_size: int | None) -> None:
    """``--image-size`` must suit the model (a ViT's patch size divides it), checked on the config alone."""
    if image_size is not None:
        with flopcli.about(f"--image-size {image_size}"):
            vitcore.get_config(model, image_size=image_size)


@contextlib.contextmanager
def naming_flags(args: argparse.Namespace) -> Iterator[None]:
    """Names the flag behind an error of building the method: the ``--set`` item whose field the message names
    (``mask_ratio=1.5; expected ...`` came from ``--set method.mask_ratio=1.5``), else ``--method``/``--model``."""
    try:
        yield
    except (ValueError, TypeError) as error:
        message = str(error)
        if message.startswith("--"):
            raise
        if isinstance(error, flopcli.UserCodeError):  # the message names the method's class already
            raise flopcli.CommandError(f"--method: {message}") from error
        for item in args.set:
            field = item.partition("=")[0].strip().partition(".")[2]
            if re.search(rf"\b{re.escape(field)}\b", message):
                raise flopcli.CommandError(f"--set {item}: {message}") from error
        raise flopcli.CommandError(f"--method {args.method} --model {args.model}: {message}") from error


def body(args: argparse.Namespace) -> int:
    # Every cheap check first: the dataset may be built and the run directory is created only after them.
    try:
        chosen = overrides.parse_overrides(args.set, recipes.method_class(args.method))
    except ValueError as error:  # the message starts with the field: "--set method.foo: not a field of MAE"
        raise flopcli.CommandError(f"--set {error}") from None
    check_image_size(args.model, args.image_size)
    if args.hardware is not None:
        with flopcli.about("--hardware"):
            flopmeter.hardware(args.hardware)
    if args.tensorboard:
        runloop.check_tensorboard("--tensorboard")
    kwargs = chosen.build_kwargs()
    # The method built once without the dataset's fields: a bad --set value, or a method that does not suit
    # --model, is refused before the dataset is built or the run folder exists.
    with naming_flags(args):
        checked, _ = recipes.build_method(args.method, args.model, preset=args.preset, total_steps=args.steps,
                                          image_size=args.image_size, **kwargs)
    runloop.initialize_distributed()
    runloop.enable_compilation_cache()  # $FLOPWISE_JAX_CACHE, else ~/.cache/flopwise/jax
    out = args.out or f"runs/{args.method}-{args.model}-{Path(args.dataset).name}"
    mesh = runloop.make_mesh()
    with flopcli.about("--batch"):
        runloop.check_batch_size(args.batch, mesh)
    runloop.check_fits_memory(args.batch * vitcore.example_memory_floor(checked.backbone), mesh,
                              option=f"--batch {args.batch}")
    cfg = trainer.TrainConfig(out_dir=out, seed=args.seed, resume=args.resume, loop=runloop.LoopConfig(
        steps=args.steps, batch_size=args.batch, checkpoint_every=args.checkpoint_every, log_every=args.log_every,
        eval_every=args.eval_every, hardware=args.hardware, watts=args.watts, resume_from=args.resume_from,
        param_sharding="fsdp" if args.fsdp else "replicate", option_names=FLAGS, tensorboard=args.tensorboard,
        on_nonfinite="skip" if args.skip_nonfinite else "raise"))
    if not args.resume and runloop.holds_run(out):
        raise flopcli.CommandError(f"--out {out} already holds a run; pass --resume to continue it or choose "
                                   "another --out")
    if args.resume and not Path(out, runloop.run_directory.CONFIG_FILE).is_file():
        raise flopcli.CommandError(f"--resume: {out} holds no run; there is nothing to resume. Drop --resume to "
                                   "start a new run there")
    with flopcli.about("--dataset"):
        directory = flopdata.resolve(args.dataset)
    kwargs["method_overrides"] = recipes.dataset_overrides(args.method, directory) | kwargs["method_overrides"]
    with naming_flags(args):
        method, optim = recipes.build_method(args.method, args.model, preset=args.preset, total_steps=args.steps,
                                             image_size=args.image_size, **kwargs)
    size = vitcore.image_hw(method.backbone.image_size)[0]  # --image-size or model.image_size win
    data = iter(pretrain_loader(PretrainData(str(directory), batch_size=args.batch, image_size=size,
                                             seed=args.seed, worker_count=args.workers)))
    summary, _ = trainer.train(
        method, optim, data, cfg, knn=recipes.knn_splits(directory, image_size=size),
        heldout=heldout_set(directory, image_size=size, batch_size=args.batch),
        run_info={"method": args.method, "model": args.model, "dataset": args.dataset, "preset": args.preset,
                  "image_size": size, "dataset_dir": str(directory), "method_repr": repr(method),
                  "overrides": list(chosen.assignments())})
    print(json.dumps(summary.to_json(), indent=2))
    if summary.status != "completed":
        raise flopcli.Interrupted(f"pre-training stopped at step {summary.steps} of {args.steps} (checkpoint "
                                  f"saved in {out}); continue it with the same command and --resume")
    return flopcli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return flopcli.run(build_parser(), body, argv, errors=(runloop.NonFiniteError,))


if __name__ == "__main__":
    sys.exit(main())

"""Pre-train one method: the one command a user runs.

    flopwise-pretrain --method dino --model vit-test --dataset fmnist_objects --steps 50 --batch 64
    flopwise-pretrain --method mae --model vit-b16 --dataset /data/imagenet/1.0.0 --preset paper:i1k \\
        --steps 250000 --batch 4096 --out runs/mae-b16 --resume
    flopwise-pretrain --method mae --model vit-test --dataset fmnist_objects --flops 4e11 --batch 64

(also `python tools/pretrain.py ...` in a checkout). Writes config.json, metrics.jsonl, checkpoints/,
encoder.eqx/.json and summary.json under --out. The embedded Fashion-MNIST sets are built on first use; other
datasets are a name built by flopwise-build-dataset or a TFDS directory. SIGTERM checkpoints and exits with
status 3; --resume continues from the last checkpoint. The length is --steps, or --flops: a FLOP budget, which
becomes steps once the compiled step is measured (round(FLOPs / FLOPs per step), at least 1; recorded in
config.json as run.flops and run.flops_per_step). Bad input: one line "error: ..." and status 2.

Every option of the run (`sslmethods.PretrainSpec`, what a sweep's pre-training stage builds) is a flag below.
OUT/command.txt records the command that reruns the run with every option spelled out (a sweep's pre-training
folders have one too); `sslmethods.read_pretrain(OUT)` gives back the spec it parses to.
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

from ..pretrain import command_line
from ..pretrain.command_line import BASE  # noqa: F401 (the command's defaults: callers read them here)
from ..pretrain.spec import PretrainSpec

FLAGS = runloop.OptionNames(skip_nonfinite="--skip-nonfinite", resume="--resume", resume_from="--resume-from STEP",
                            steps="--steps")


def build_parser() -> flopcli.ArgumentParser:
    return command_line.build_parser(__doc__)


@contextlib.contextmanager
def naming_flags(spec: PretrainSpec) -> Iterator[None]:
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
        if message.startswith("init_from="):
            raise flopcli.CommandError(f"--init-from: {message}") from error
        for item in spec.set:
            field = item.partition("=")[0].strip().partition(".")[2]
            if re.search(rf"\b{re.escape(field)}\b", message):
                raise flopcli.CommandError(f"--set {item}: {message}") from error
        raise flopcli.CommandError(f"--method {spec.method} --model {spec.model}: {message}") from error


def body(args: argparse.Namespace) -> int:
    # Every cheap check first (the spec checks each flag): the dataset may be built and the run directory is
    # created only after them.
    spec = command_line.spec_from_args(args)
    if spec.tensorboard:
        runloop.check_tensorboard("--tensorboard")
    # The method built once without the dataset's fields: a bad --set value, or a method that does not suit
    # --model, is refused before the dataset is built or the run folder exists.
    with naming_flags(spec):
        checked, _ = spec.build()
    runloop.initialize_distributed()
    runloop.enable_compilation_cache()  # $FLOPWISE_JAX_CACHE, else ~/.cache/flopwise/jax
    out = args.out or f"runs/{spec.run_name}"
    mesh = runloop.make_mesh()
    with flopcli.about("--batch"):
        runloop.check_batch_size(spec.batch, mesh)
    runloop.check_fits_memory(spec.batch * vitcore.example_memory_floor(checked.backbone), mesh,
                              option=f"--batch {spec.batch}")
    if args.resume_from is not None and not args.resume:
        raise flopcli.CommandError(f"--resume-from {args.resume_from} needs --resume")
    if not args.resume and runloop.holds_run(out):
        raise flopcli.CommandError(f"--out {out} already holds a run; pass --resume to continue it or choose "
                                   "another --out")
    if args.resume and not Path(out, runloop.run_directory.CONFIG_FILE).is_file():
        raise flopcli.CommandError(f"--resume: {out} holds no run; there is nothing to resume. Drop --resume to "
                                   "start a new run there")
    with flopcli.about("--dataset"):
        directory = flopdata.resolve(spec.dataset, data_dir=args.data_dir)
    with naming_flags(spec):
        built = spec.build(directory)
    summary = spec.train(out, dataset_dir=directory, resume=args.resume, data_dir=args.data_dir,
                         resume_from=args.resume_from, option_names=FLAGS, method=built)
    print(json.dumps(summary.to_json(), indent=2))
    if summary.status != "completed":
        length = f"{spec.steps}" if spec.flops is None else f"the steps of {spec.flops:g} FLOPs"
        raise flopcli.Interrupted(f"pre-training stopped at step {summary.steps} of {length} (checkpoint "
                                  f"saved in {out}); continue it with the same command and --resume")
    return flopcli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    flopmeter.reuse_host_memory()  # before any JAX work: XLA:CPU reuses its step buffers (docs/benchmarks.md)
    return flopcli.run(build_parser(), body, argv, errors=(runloop.NonFiniteError,))


if __name__ == "__main__":
    sys.exit(main())

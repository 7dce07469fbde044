"""Probe every layer of a frozen encoder with linear segmentation probes and write OUT/result.json.

    flopwise-probe-layers --encoder runs/mae-vit-test --dataset fmnist_scenes --image-size 64 --out runs/probe/mae \\
        --train-examples 256 --eval-examples 128 --steps 100
    flopwise-probe-layers --encoder scratch --model vit-test --dataset fmnist_scenes --image-size 64 \\
        --out runs/probe/scratch

(also `python tools/probe_layers.py ...` in a checkout). The layer-wise transfer of Abnar et al. 2021: a linear
probe on each layer's features, fitted on the training examples less a validation split (which chooses the
layer), scored on the evaluation split. --encoder: a flopwise-pretrain run directory, a timm-format
.safetensors/.npz file (needs --model) or `scratch` (needs --model). Datasets are looked up under --data-dir
(default $FLOPWISE_DATA or data/). OUT/result.json holds every layer's validation and test mIoU per seed;
--resume keeps the seeds it holds and probes the others. Bad input: one line "error: ..." and status 2.

Every option of the study (`segtransfer.LayerProbeSpec`, what a sweep's layer-probe task holds) is a flag below.
OUT/command.txt records the command that reruns the study with every option spelled out (a sweep's layer-probe
task folders have one too).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import flopcli
import flopdata
import flopmeter
import vitcore

from ..encoders import encoder_kind
from ..probe.spec import LayerProbeSpec
from ..probe.study import RESULT_FILE, run_layer_probe
from ..segmentation.transfer_data import describe_segmentation_dataset

BASE = LayerProbeSpec()


def build_parser() -> flopcli.ArgumentParser:
    p = flopcli.ArgumentParser(description=__doc__)
    p.add_argument("--encoder", required=True, help="RUN_DIR | file.safetensors | file.npz | scratch")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--model", choices=list(vitcore.PRESETS), help="preset (timm files and scratch)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--resume", action="store_true", help="keep the seeds OUT/result.json holds, probe the others")
    flopcli.add_spec_flags(p, LayerProbeSpec, base=BASE, required=["dataset"])
    return p


def check_arguments(args: argparse.Namespace) -> LayerProbeSpec:
    """Every check that needs no dataset and writes nothing; returns the study's spec."""
    with flopcli.about("--encoder"):
        kind = encoder_kind(args.encoder)
    if kind != "run" and args.model is None:
        raise flopcli.CommandError(f"--encoder {args.encoder} needs --model, one of {list(vitcore.PRESETS)}")
    spec = flopcli.spec_from_flags(LayerProbeSpec, args, base=BASE)
    if args.model is not None:
        with flopcli.about(f"--image-size {spec.image_size}"):
            vitcore.get_config(args.model, image_size=spec.image_size)
    result = args.out / RESULT_FILE
    if result.is_file() and not args.resume:
        raise flopcli.CommandError(f"--out {args.out} already holds {RESULT_FILE}; pass --resume to keep its seeds "
                                   "and probe the others, or choose another --out")
    if args.resume and not result.is_file():
        raise flopcli.CommandError(f"--resume: {args.out} holds no {RESULT_FILE}; there is nothing to resume")
    return spec


def body(args: argparse.Namespace) -> int:
    spec = check_arguments(args)
    with flopcli.about("--dataset"):
        describe_segmentation_dataset(flopdata.resolve(spec.dataset, data_dir=args.data_dir))
    result = run_layer_probe(spec, encoder=args.encoder, out_dir=args.out, model=args.model, data_dir=args.data_dir)
    best = [max(range(len(layers)), key=lambda i: layers[i]["val_miou"]) for layers in result["layers"]]
    print(json.dumps({"seeds": result["seeds"], "best_layer_by_seed": best, "out": str(args.out)}, indent=2))
    return flopcli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    flopmeter.reuse_host_memory()  # before any JAX work: XLA:CPU reuses its step buffers (docs/benchmarks.md)
    return flopcli.run(build_parser(), body, argv)


if __name__ == "__main__":
    sys.exit(main())

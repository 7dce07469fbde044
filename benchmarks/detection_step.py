"""FLOPs per step and images/s of the Mask R-CNN training step (segtransfer.detection.make_detection_step).

    python benchmarks/detection_step.py                    # tiny detector (vit-test @64, batch 8) timed here, and
                                                           # the study's step (ViT-B/16 @1024, batch 64) measured
                                                           # abstractly: compiled, never run
    python benchmarks/detection_step.py --model vit-b16 --preset vitdet --image-size 1024 --batch 4 \\
        --dtype bfloat16 --no-study                        # a real ViT-B step on an accelerator

FLOPs are flopmeter.measure of the whole jitted step (forward, backward, AdamW update with layer-wise decay) on
jax.ShapeDtypeStructs (nothing allocated); time is the median of --repeats steps (flopmeter.time_step, compile
excluded) on random images with a few ground-truth boxes. Prints a markdown table. A script, not a test.
"""

from __future__ import annotations

import argparse
import platform

import flopmeter
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from segtransfer.detection import (
    STUDY_RECIPE,
    abstract_detection_state,
    batch_struct,
    detection_optimizer,
    detector_config,
    detector_from_scratch,
    init_detection_state,
    make_detection_step,
)


def synthetic_batch(struct: dict, seed: int = 0) -> dict:
    """Random [0, 1] images (the encoder normalises them); in each image 3 valid boxes of a quarter of the image."""
    rng = np.random.default_rng(seed)
    b, m = struct["boxes"].shape[:2]
    size = struct["image"].shape[1]
    boxes = np.zeros((b, m, 4), np.float32)
    valid = np.zeros((b, m), bool)
    for i in range(b):
        xy = rng.uniform(0, size * 0.7, (3, 2))
        boxes[i, :3] = np.concatenate([xy, xy + size / 4], 1)
        valid[i, :3] = True
    return {
        "image": jnp.asarray(rng.uniform(size=struct["image"].shape), jnp.float32),
        "boxes": jnp.asarray(boxes),
        "classes": jnp.asarray(np.where(valid, rng.integers(0, 3, (b, m)), -1), jnp.int32),
        "masks": jnp.full(struct["masks"].shape, 255, jnp.uint8),
        "valid": jnp.asarray(valid),
        "image_hw": jnp.full((b, 2), size, jnp.int32),
    }


def measure(model_name, preset, image_size, batch, *, dtype, num_classes, max_objects, mask_size, timed, repeats):
    config = detector_config(preset, num_classes=num_classes, image_size=image_size)
    recipe = STUDY_RECIPE

    def build(key):
        return detector_from_scratch(model_name, config, key=key, compute_dtype=dtype, drop_path=recipe.drop_path)

    state, optimizer = abstract_detection_state(build, lambda m: detection_optimizer(m, recipe), key=jr.key(0))
    step = make_detection_step(optimizer)
    struct = batch_struct(batch, image_size, max_objects, mask_size)
    cost = flopmeter.measure(step, state, struct)
    row = {"flops": cost.flops, "compile": cost.compile_seconds, "notes": cost.notes, "seconds": None}
    if timed:
        real = init_detection_state(build(jr.key(0)), optimizer, key=jr.key(1))
        row["seconds"] = flopmeter.time_step(step, real, synthetic_batch(struct), warmup=1, repeats=repeats)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="vit-test")
    p.add_argument("--preset", default="tiny", choices=("tiny", "vitdet"))
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--num-classes", type=int, default=80)
    p.add_argument("--max-objects", type=int, default=100)
    p.add_argument("--mask-size", type=int, default=56)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-study", action="store_true", help="skip the abstract study-size row")
    args = p.parse_args()
    device = jax.devices()[0]
    cpu = platform.processor() or platform.machine()
    print(f"{device.platform} {device.device_kind} ({cpu}), jax {jax.__version__}\n")
    print("| step | GFLOPs/step | GFLOPs/image | compile s | ms/step | images/s |")
    print("|---|---|---|---|---|---|")
    rows = [(f"{args.model} {args.preset} @{args.image_size} batch {args.batch} {args.dtype}", args.model, args.preset,
             args.image_size, args.batch, args.dtype, True)]
    if not args.no_study:
        rows.append(("study: vit-b16 vitdet @1024 batch 64 bfloat16 (abstract)", "vit-b16", "vitdet", 1024, 64,
                     "bfloat16", False))
    for name, model, preset, size, batch, dtype, timed in rows:
        r = measure(model, preset, size, batch, dtype=dtype, num_classes=args.num_classes,
                    max_objects=args.max_objects, mask_size=args.mask_size, timed=timed, repeats=args.repeats)
        ms = f"{r['seconds'] * 1e3:,.1f}" if r["seconds"] else "-"
        ips = f"{batch / r['seconds']:,.1f}" if r["seconds"] else "-"
        print(f"| {name} | {r['flops'] / 1e9:,.1f} | {r['flops'] / batch / 1e9:,.2f} | {r['compile']:.1f} | "
              f"{ms} | {ips} |", flush=True)
        for note in r["notes"]:
            print(f"  note: {note}")


if __name__ == "__main__":
    main()

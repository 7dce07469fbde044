"""Images/s and MFU of each method's full training step (the engine's jitted step) on this machine.

    .venv/bin/python benchmarks/train_step.py                       # six methods, vit-test @32, batch 32, float32
    .venv/bin/python benchmarks/train_step.py --model vit-b16 --batch 128 --dtype bfloat16   # on a GPU

FLOPs per step are measured on the compiled step (flopmeter.measure); time is the median of --repeats steps
(flopmeter.time_step, compile excluded); MFU = achieved FLOP/s / flopmeter.peak_flops() measured here (the
fastest of several matmul shapes and dtypes). Prints a markdown table. A script, not a test.
"""

from __future__ import annotations

import argparse
import platform

import flopmeter
import jax
import jax.numpy as jnp
import numpy as np
from sslmethods import recipes, step, train_state, trainer
from sslmethods.presets import METHOD_NAMES


def synthetic_batch(struct: dict, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for name, s in struct.items():
        if jnp.issubdtype(s.dtype, jnp.floating):
            out[name] = jnp.asarray(rng.uniform(0, 1, s.shape), s.dtype)
        elif s.dtype == jnp.bool_:
            out[name] = jnp.ones(s.shape, jnp.bool_)
        else:
            out[name] = jnp.asarray(rng.integers(0, 10, s.shape), s.dtype)
    return out


def bench(method_name: str, model: str, batch: int, *, dtype: str, repeats: int, peak: flopmeter.PeakFlops) -> dict:
    overrides = {"supervised": {"num_classes": 10}, "clip": {"class_names": tuple("abcdefghij")}}
    method, optim = recipes.build_method(method_name, model, preset="demo", total_steps=1000,
                                         model_overrides={"compute_dtype": dtype},
                                         method_overrides=overrides.get(method_name, {}))
    tx, _ = trainer.build_optimizer(method, optim, 1000)
    struct = method.batch_spec(batch)
    fn = step.make_step_fn(method, tx)
    abstract, _ = train_state.abstract_train_state(method, tx, struct)
    flops = flopmeter.measure(fn, abstract, struct).flops
    state = train_state.init_train_state(method, tx, key=jax.random.key(0))
    seconds = flopmeter.time_step(fn, state, synthetic_batch(struct), warmup=1, repeats=repeats)
    return {"method": method_name, "flops": flops, "seconds": seconds, "images_per_second": batch / seconds,
            "mfu": flopmeter.mfu(flops, seconds, peak)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="vit-test")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--methods", nargs="*", default=list(METHOD_NAMES))
    args = p.parse_args()
    peak = flopmeter.peak_flops()
    device = jax.devices()[0]
    print(f"{device.platform} {device.device_kind} ({platform.processor() or platform.machine()}), "
          f"{args.model} batch {args.batch} {args.dtype}; measured peak {peak.flops_per_second / 1e12:.3f} TFLOP/s "
          f"({'x'.join(map(str, peak.shape))} {peak.dtype})\n")
    print("| method | GFLOPs/step | ms/step | images/s | MFU |\n|---|---|---|---|---|")
    for name in args.methods:
        r = bench(name, args.model, args.batch, dtype=args.dtype, repeats=args.repeats, peak=peak)
        print(f"| {name} | {r['flops'] / 1e9:,.2f} | {r['seconds'] * 1e3:,.1f} | {r['images_per_second']:,.1f} | "
              f"{r['mfu']:.1%} |", flush=True)


if __name__ == "__main__":
    main()

"""Does flopmeter count a training step on GPU as it counts the same step on CPU? (issue 11, "FLOPs on GPU")

    python benchmarks/gpu_flops_check.py                      # vit-s16 @224, batch 8, bfloat16: < 2 min on an H100
    python benchmarks/gpu_flops_check.py --hlo-dir out/       # also write each compiled GPU program's HLO text

Compiles (never runs) one vitcore ViT + optax AdamW training step (unrolled blocks, then `scan_layers=True`)
for the GPU and for the CPU and measures both with `flopmeter.measure`; on the GPU, XLA hands the matmuls to
cuBLAS custom calls that flopmeter counts from their shapes. Acceptance: the two counts agree within 2%.
vitcore's attention is plain einsums, so the step has no fused attention; a second check compiles
`jax.nn.dot_product_attention` forward + backward with implementation="cudnn" and compares it with the XLA
implementation on CPU, which stores the probabilities instead of recomputing Q K^T in the backward (the fused
backward's extra 2*B*H*T*S*D FLOPs are shown and taken out before comparing). On a machine without a GPU
the GPU columns are skipped with a message. Prints a markdown table; `--json` writes the figures too.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import equinox as eqx
import flopmeter
import jax
import jax.numpy as jnp
import optax
import vitcore
from jax.sharding import SingleDeviceSharding

TOLERANCE = 0.02


def _gpu_device() -> jax.Device | None:
    try:
        return jax.devices("gpu")[0]
    except RuntimeError:
        return None


def _place(tree, device: jax.Device):
    """Abstract leaves pinned to `device`, so `measure` compiles for that device's platform."""
    sharding = SingleDeviceSharding(device)

    def place(leaf):
        if isinstance(leaf, jax.ShapeDtypeStruct):
            return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=sharding)
        return leaf

    return jax.tree_util.tree_map(place, tree)


def vit_step_program(args: argparse.Namespace, scan: bool):
    """`(step, abstract_args)` for one ViT + AdamW training step that returns the new model and state."""
    tx = optax.adamw(1e-3, weight_decay=0.05)

    def init():  # shapes only: eval_shape allocates nothing
        depth = {} if args.depth is None else {"depth": args.depth}
        model = vitcore.create(args.model, key=jax.random.key(0), num_classes=1000, image_size=args.image_size,
                               compute_dtype=args.dtype, scan_layers=scan, **depth)
        return model, tx.init(eqx.filter(model, eqx.is_array))

    model, opt_state = eqx.filter_eval_shape(init)
    images = jax.ShapeDtypeStruct((args.batch, args.image_size, args.image_size, 3), jnp.float32)
    labels = jax.ShapeDtypeStruct((args.batch,), jnp.int32)

    def step(model, opt_state, images, labels):
        def loss_fn(m):
            logits = m(images).logits.astype(jnp.float32)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
        updates, opt_state = tx.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    return step, (model, opt_state, images, labels)


def attention_program(args: argparse.Namespace, implementation: str):
    """Forward + backward of `jax.nn.dot_product_attention` on [B, T, N, H] bfloat16 inputs."""
    b, t, n, h = args.attention_shape
    spec = jax.ShapeDtypeStruct((b, t, n, h), jnp.bfloat16)

    def step(q, k, v):
        def loss(q, k, v):
            out = jax.nn.dot_product_attention(q, k, v, is_causal=args.causal, implementation=implementation)
            return jnp.sum(out.astype(jnp.float32) ** 2)

        return jax.grad(loss, argnums=(0, 1, 2))(q, k, v)

    return step, (spec, spec, spec)


def _measure(program, device: jax.Device, hlo_path: pathlib.Path | None) -> tuple[flopmeter.Cost, float]:
    step, abstract = program
    start = time.perf_counter()
    compiled = flopmeter.lower_abstract(step, *_place(abstract, device)).compile()
    seconds = time.perf_counter() - start
    if hlo_path is not None:
        hlo_path.write_text(compiled.as_text())
    return flopmeter.cost_from_compiled(compiled, compile_seconds=seconds), seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="vit-s16")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--dtype", default="bfloat16", choices=("float32", "bfloat16"))
    p.add_argument("--depth", type=int, help="override the preset's number of blocks")
    p.add_argument("--layouts", nargs="*", default=["unrolled", "scan"], choices=("unrolled", "scan"),
                   help="ViT step variants to check (none: attention check only)")
    p.add_argument("--attention-shape", type=int, nargs=4, default=(8, 256, 6, 64), metavar=("B", "T", "N", "H"))
    p.add_argument("--causal", action="store_true", help="causal attention in the attention check")
    p.add_argument("--no-attention", action="store_true", help="skip the fused-attention check")
    p.add_argument("--hlo-dir", type=pathlib.Path, help="write each GPU program's compiled HLO text here")
    p.add_argument("--json", type=pathlib.Path, help="also write the figures as JSON here")
    args = p.parse_args()
    if args.hlo_dir is not None:
        args.hlo_dir.mkdir(parents=True, exist_ok=True)
    cpu, gpu = jax.devices("cpu")[0], _gpu_device()
    if gpu is None:
        print("no GPU visible to JAX: skipping the GPU columns (this check needs a GPU; CPU counts only)\n")
    else:
        print(f"GPU: {gpu.device_kind}; CPU: {cpu.device_kind}; jax {jax.__version__}\n")

    programs = {f"{args.model} {args.dtype} {layout}": (vit_step_program, layout == "scan") for layout in args.layouts}
    rows, records = [], []
    for name, (build, scan) in programs.items():
        cpu_cost, _ = _measure(build(args, scan), cpu, None)
        record = {"program": name, "cpu_flops": cpu_cost.flops}
        if gpu is not None:
            hlo = args.hlo_dir / f"vit_step_{'scan' if scan else 'unrolled'}.gpu.hlo.txt" if args.hlo_dir else None
            gpu_cost, seconds = _measure(build(args, scan), gpu, hlo)
            record |= {"gpu_flops": gpu_cost.flops, "gpu_library_flops": gpu_cost.library_flops,
                       "gpu_notes": list(gpu_cost.notes), "gpu_seconds": seconds}
        records.append(record)
    if not args.no_attention:
        b, t, n, h = args.attention_shape
        pairs = t * (t + 1) // 2 if args.causal else t * t  # the fused kernel skips masked pairs
        recompute = 2.0 * b * n * pairs * h
        cpu_cost, _ = _measure(attention_program(args, "xla"), cpu, None)
        record = {"program": f"attention B{b} T{t} N{n} H{h}{' causal' if args.causal else ''}",
                  "cpu_flops": cpu_cost.flops, "recompute_flops": recompute, "comparable": not args.causal}
        if gpu is not None:
            hlo = args.hlo_dir / "attention.gpu.hlo.txt" if args.hlo_dir else None
            gpu_cost, seconds = _measure(attention_program(args, "cudnn"), gpu, hlo)
            record |= {"gpu_flops": gpu_cost.flops, "gpu_library_flops": gpu_cost.library_flops,
                       "gpu_notes": list(gpu_cost.notes), "gpu_seconds": seconds}
        records.append(record)

    print("| program | CPU FLOPs | GPU FLOPs | of which cuBLAS/cuDNN | GPU / CPU | within 2% |")
    print("|---|---|---|---|---|---|")
    for r in records:
        if "gpu_flops" not in r:
            print(f"| {r['program']} | {r['cpu_flops']:.6g} | skipped (no GPU) | | | |")
            continue
        gpu_flops = r["gpu_flops"] - r.get("recompute_flops", 0.0)  # the fused backward's recomputed Q K^T
        ratio = gpu_flops / r["cpu_flops"]
        r["ratio"] = ratio
        shown = f"{r['gpu_flops']:.6g}" + (f" - {r['recompute_flops']:.4g} recompute" if "recompute_flops" in r else "")
        if r.get("comparable", True):
            rows.append(abs(ratio - 1.0) <= TOLERANCE)
            verdict = "yes" if rows[-1] else "NO"
        else:  # XLA's implementation computes the whole T x T square and masks it
            verdict = "n/a (causal: the fused kernel skips the masked pairs)"
        print(f"| {r['program']} | {r['cpu_flops']:.6g} | {shown} | {r['gpu_library_flops']:.4g} | {ratio:.4f} | "
              f"{verdict} |")
    for r in records:
        for note in r.get("gpu_notes", []):
            print(f"note ({r['program']}, GPU): {note}")
    if args.json is not None:
        args.json.write_text(json.dumps(records, indent=1))
    if gpu is not None:
        print(f"\n{sum(rows)}/{len(rows)} programs within {TOLERANCE:.0%}")


if __name__ == "__main__":
    main()

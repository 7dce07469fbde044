"""Images/s of one ViT forward + backward (gradient of a mean-squared logit loss) on this machine.

    .venv/bin/python benchmarks/vit_step.py            # vit-ti16 @224 batch 8 and vit-demo @64 batch 64
    .venv/bin/python benchmarks/vit_step.py --repeats 5 --dtype bfloat16

Prints a markdown table (compile time, step time, images/s). A script, not a test: later issues compare
against it.
"""

import argparse
import platform
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import vitcore

DEFAULT_CASES = (("vit-ti16", 224, 8), ("vit-demo", 64, 64))


def bench(preset: str, image_size: int, batch: int, *, repeats: int, dtype: str) -> dict:
    model = vitcore.create(
        preset, key=jax.random.key(0), num_classes=10, image_size=image_size, compute_dtype=dtype
    )
    images = jax.random.normal(jax.random.key(1), (batch, image_size, image_size, 3), jnp.float32)

    @eqx.filter_jit
    def step(model, images):
        def loss(m):
            return jnp.mean(m(images).logits ** 2)

        return eqx.filter_value_and_grad(loss)(model)

    start = time.perf_counter()
    jax.block_until_ready(step(model, images))
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(step(model, images))
        times.append(time.perf_counter() - start)
    best = min(times)
    median = sorted(times)[len(times) // 2]
    return {
        "preset": preset,
        "image": image_size,
        "batch": batch,
        "dtype": dtype,
        "compile_s": compile_s,
        "step_s": median,
        "img_s": batch / median,
        "best_img_s": batch / best,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    args = parser.parse_args()
    print(
        f"# ViT forward+backward, {jax.devices()[0].platform} ({platform.machine()}), "
        f"{jax.device_count()} device(s), jax {jax.__version__}, median of {args.repeats}"
    )
    print("| preset | image | batch | dtype | compile s | step s | images/s (median) | images/s (best) |")
    print("|---|---|---|---|---|---|---|---|")
    for preset, size, batch in DEFAULT_CASES:
        r = bench(preset, size, batch, repeats=args.repeats, dtype=args.dtype)
        print(
            f"| {r['preset']} | {r['image']} | {r['batch']} | {r['dtype']} | {r['compile_s']:.1f} | "
            f"{r['step_s']:.3f} | {r['img_s']:.1f} | {r['best_img_s']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

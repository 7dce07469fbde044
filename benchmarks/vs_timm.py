"""Training-step images/s: flopwise (vitcore + optax AdamW, one jitted donated step) vs timm + PyTorch.

    pip install -e '.[bench]'                  # timm and torch: a benchmark extra, not a package dependency
    python benchmarks/vs_timm.py               # the three rows below, 7 interleaved repetitions
    python benchmarks/vs_timm.py --rows ti16 --repeats 11 --threads 1

Both sides train the same ViT (float32, 1000 classes, no dropout or drop path) with softmax cross-entropy and
AdamW (lr 1e-3, weight decay 0.05 on every parameter) on random data, in ONE process with the same number of
threads: torch.set_num_threads(N), and XLA:CPU confined to N cores by the process's CPU affinity, which is set
before jax and torch start their thread pools. Repetitions alternate between the two sides so machine noise
hits both alike; each repetition times --steps consecutive steps and the table reports the medians. Achieved
GFLOP/s divides the FLOPs of the compiled flopwise step (flopmeter, XLA convention: a multiply-add is 2) by
each side's step time: the same model and math, so the same work.

Process-wide settings, applied before either library starts and so the same for both: flopmeter's
`reuse_host_memory()` (glibc keeps freed large blocks; without it XLA:CPU faults its temporary buffer in at
every step, see the page-fault column; `--no-reuse-host-memory`) and OpenMP's passive wait policy for torch's
threads (`--omp-wait-policy active` to spin). A script, not a test; results and the machine are in
docs/benchmarks.md.
"""

import argparse
import collections
import glob
import gzip
import json
import os
import platform
import re
import resource
import shutil
import statistics
import time

import timm_reference

# (label, vitcore preset, timm model, image size, patch size, batch)
ROWS = {
    "ti16": ("ViT-Ti/16, 224 px", "vit-ti16", "vit_tiny_patch16_224", 224, 16, 8),
    "ti8-64": ("ViT-Ti width, patch 8, 64 px", "vit-ti16", "vit_tiny_patch16_224", 64, 8, 64),
    "s16": ("ViT-S/16, 224 px", "vit-s16", "vit_small_patch16_224", 224, 16, 8),
}
NUM_CLASSES = 1000
LR, WEIGHT_DECAY = timm_reference.LR, timm_reference.WEIGHT_DECAY  # the same optimizer both sides


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def flopwise_step(preset: str, image: int, patch: int, batch: int):
    """A zero-argument callable running one donated AdamW step, the compiled step's FLOPs, and the compiled
    step."""
    import equinox as eqx
    import flopmeter
    import jax
    import jax.numpy as jnp
    import optax
    import vitcore

    model = vitcore.create(preset, key=jax.random.key(0), num_classes=NUM_CLASSES, image_size=image,
                           patch_size=patch)
    params, static = eqx.partition(model, eqx.is_array)
    tx = optax.adamw(LR, weight_decay=WEIGHT_DECAY)
    images = jax.random.normal(jax.random.key(1), (batch, image, image, 3), jnp.float32)
    labels = jax.random.randint(jax.random.key(2), (batch,), 0, NUM_CLASSES)

    def step(params, opt_state, images, labels):
        def loss_fn(p):
            logits = eqx.combine(p, static)(images).logits
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    state = [params, tx.init(params)]
    start = time.perf_counter()
    compiled = jax.jit(step, donate_argnums=(0, 1)).lower(*state, images, labels).compile()
    cost = flopmeter.cost_from_compiled(compiled, compile_seconds=time.perf_counter() - start)

    def run():
        state[0], state[1], loss = compiled(*state, images, labels)
        return loss

    return run, cost.flops, compiled


def timm_step(name: str, image: int, patch: int, batch: int, *, fused_adamw: bool):
    model = timm_reference.timm_vit(name, image, patch, NUM_CLASSES)
    return timm_reference.step(model, "supervised", batch, image, NUM_CLASSES, fused_adamw=fused_adamw)


def time_steps(run, steps: int, sync) -> tuple[float, float]:
    """Seconds per step and minor page faults per step over `steps` consecutive steps."""
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    for _ in range(steps):
        out = run()
    sync(out)
    seconds = (time.perf_counter() - start) / steps
    return seconds, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps


def profile_table(run, compiled, steps: int, directory: str, top: int = 8) -> str:
    """Where the compiled flopwise step's time goes: its XLA:CPU operations (named after their fusions) grouped
    by kind from a jax.profiler trace of `steps` steps, the process's user and kernel CPU time per step, the
    temporary buffer XLA allocates per execution, and the largest fusion's operand count."""
    import jax

    shutil.rmtree(directory, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_SELF)
    with jax.profiler.trace(directory):
        for _ in range(steps):
            jax.block_until_ready(run())
    after = resource.getrusage(resource.RUSAGE_SELF)
    (trace,) = glob.glob(os.path.join(directory, "**", "*.trace.json.gz"), recursive=True)
    with gzip.open(trace) as f:
        events = json.load(f)["traceEvents"]
    kinds = collections.Counter()
    for e in events:  # complete events; Python frames ($...) and the executor's own spans are not operations
        if e.get("ph") == "X" and not e["name"].startswith(("$", "Thunk", "Pjit", "Common", "Slinky", "end: ")):
            kinds[re.sub(r"\.\d+$", "", e["name"])] += e["dur"]
    total = sum(kinds.values())
    rows = [f"| {k} | {v / steps / 1e3:.1f} | {v / total:.0%} |" for k, v in kinds.most_common(top)]
    text = compiled.as_text()
    entry = text[text.index("ENTRY"):]
    operands = max((m.group(1).count("%") for m in re.finditer(r" fusion\((.*?)\), kind=", entry)), default=0)
    user, kernel = ((getattr(after, f) - getattr(before, f)) / steps * 1e3 for f in ("ru_utime", "ru_stime"))
    temp = compiled.memory_analysis().temp_size_in_bytes / 1e6
    return "\n".join([
        f"CPU time per step: {user:.0f} ms user, {kernel:.0f} ms kernel; temporary buffer {temp:.0f} MB; "
        f"largest fusion {operands} operands\n",
        "| operation kind | ms/step | share |", "|---|---|---|", *rows,
    ])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    p.add_argument("--repeats", type=int, default=7, help="interleaved repetitions per side (median reported)")
    p.add_argument("--steps", type=int, default=3, help="steps timed per repetition")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument(
        "--torch-adamw", choices=("fused", "foreach"), default="fused",
        help="torch's AdamW implementation (fused is its fastest on CPU)",
    )
    p.add_argument(
        "--omp-wait-policy", choices=("passive", "active"), default="passive",
        help="torch's OpenMP threads sleep (passive) or spin (active) between parallel regions; spinning made "
        "timm's step several times slower on this shared 2-core machine",
    )
    p.add_argument("--profile", metavar="DIR", help="after each row, trace 3 flopwise steps into DIR/<row>")
    p.add_argument(
        "--no-reuse-host-memory", action="store_true",
        help="skip flopmeter.reuse_host_memory() (then XLA:CPU page-faults its temporary buffer in every step)",
    )
    args = p.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if not 1 <= args.threads <= len(cpus):
        print(f"error: --threads={args.threads}; expected 1..{len(cpus)} (the CPUs this process may use)")
        raise SystemExit(2)
    # All before jax and torch start: the CPU affinity and the allocator settings bind their thread pools,
    # and OpenMP reads its wait policy when torch loads it.
    os.sched_setaffinity(0, cpus[: args.threads])
    os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()
    import flopmeter

    reuse = False if args.no_reuse_host_memory else flopmeter.reuse_host_memory()
    import jax
    import timm
    import torch

    torch.set_num_threads(args.threads)
    print(
        f"# CPU: {cpu_model()}, {args.threads} thread(s) each side; jax {jax.__version__}, torch "
        f"{torch.__version__}, timm {timm.__version__}; float32, AdamW (torch: {args.torch_adamw}); OpenMP wait "
        f"policy {args.omp_wait_policy}; flopmeter.reuse_host_memory() {'on' if reuse else 'off'}; median of "
        f"{args.repeats} interleaved repetitions x {args.steps} steps\n"
    )
    print(
        "| config | batch | flopwise img/s | timm img/s | ratio | flopwise GFLOP/s | timm GFLOP/s | GFLOP/step "
        "| page faults/step (flopwise, timm) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in args.rows:
        label, preset, timm_name, image, patch, batch = ROWS[row]
        fw, flops, compiled = flopwise_step(preset, image, patch, batch)
        tm = timm_step(timm_name, image, patch, batch, fused_adamw=args.torch_adamw == "fused")
        fw_sync, tm_sync = jax.block_until_ready, lambda loss: float(loss.detach())
        time_steps(fw, 2, fw_sync), time_steps(tm, 2, tm_sync)  # warm-up
        fw_s, tm_s = [], []
        for _ in range(args.repeats):
            fw_s.append(time_steps(fw, args.steps, fw_sync))
            tm_s.append(time_steps(tm, args.steps, tm_sync))
        fw_t, tm_t = (statistics.median(t for t, _ in s) for s in (fw_s, tm_s))
        fw_f, tm_f = (statistics.median(f for _, f in s) for s in (fw_s, tm_s))
        print(
            f"| {label} | {batch} | {batch / fw_t:.1f} | {batch / tm_t:.1f} | {tm_t / fw_t:.2f} | "
            f"{flops / fw_t / 1e9:.0f} | {flops / tm_t / 1e9:.0f} | {flops / 1e9:.1f} | {fw_f:,.0f}, {tm_f:,.0f} |",
            flush=True,
        )
        if args.profile:
            print(f"\nwhere the flopwise step's time goes ({label}):\n")
            print(profile_table(fw, compiled, 3, os.path.join(args.profile, row)) + "\n", flush=True)


if __name__ == "__main__":
    main()

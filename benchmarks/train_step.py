"""The engine's full pre-training step against the bare model step, per method: images/s, FLOPs and MFU.

    python benchmarks/train_step.py                   # the demo config (configs/demo.py): six methods, CPU
    python benchmarks/train_step.py --model vit-b16 --dtype bfloat16 --methods supervised,mae --batch 256 \
        --preset paper:i1k                            # GPU: the study's heads and MAE decoder (demo's are tiny)

- engine step: exactly what `sslmethods.pretrain.trainer` runs through runloop: `trainer.pretrain_task`'s step
  (on-device augmentations, the method's loss, gradient clipping / schedules / weight-decay mask of its optimizer
  recipe, method-state update, metrics) compiled once by `runloop.compile_step` with the engine's shardings and
  donation.
- bare model step: forward + backward + `optax.adamw` of the same trainable model on the same batch, with the
  views made once outside the step (no augmentation, no schedule, no metrics, no NaN guard).
- augment: the method's on-device augmentations (`method.views`) alone, compiled on their own: what the engine
  step does that the bare step does not, besides the optimizer recipe and the metrics.

All three are timed interleaved (rounds of --steps calls each, dispatched back to back and waited for at the end, as
the engine's loop does) and the median round is reported. FLOPs come from each compiled executable
(`flopmeter.cost_from_compiled`). MFU is against the hardware table's dense bf16 peak of the device
(`flopmeter.HardwareTable.shipped().for_device_kind`) when the device is in it (GPUs, TPUs), else against the
measured matmul peak (`flopmeter.peak_flops()`, best of several shapes and dtypes; printed with its shape).
Prints a markdown table. A script, not a test.
"""

from __future__ import annotations

import argparse
import platform
import runpy
import statistics
import time
from pathlib import Path
from typing import Any

import equinox as eqx
import flopmeter
import jax
import jax.numpy as jnp
import numpy as np
import optax
import runloop
from sslmethods.pretrain import recipes, trainer
from sslmethods.pretrain.presets import METHOD_NAMES

ROOT = Path(__file__).resolve().parents[1]
DATASET_OVERRIDES = {"supervised": {"num_classes": 10}, "clip": {"class_names": tuple("abcdefghij")}}  # fmnist


def demo_settings(path: Path) -> dict[str, Any]:
    """Backbone, image size, batch and preset of a sweep config file (default: the demo's)."""
    config = runpy.run_path(str(path))["get_config"]()
    return {"model": config.backbones[0], "image_size": config.image_size, "batch": config.batch,
            "preset": config.preset}


def host_batch(struct: dict[str, jax.ShapeDtypeStruct], seed: int = 0) -> dict[str, np.ndarray]:
    """Random numpy arrays shaped like what the method's ``prepare_batch`` returns (``batch_spec``): images in
    [0, 1], labels/tokens in [0, 10), masks all True."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, s in struct.items():
        if jnp.issubdtype(s.dtype, jnp.floating):
            out[name] = rng.uniform(0, 1, s.shape).astype(s.dtype)
        elif s.dtype == jnp.bool_:
            out[name] = np.ones(s.shape, np.bool_)
        else:
            out[name] = rng.integers(0, 10, s.shape).astype(s.dtype)
    return out


def _copy_arrays(tree: Any) -> Any:
    return jax.tree.map(lambda x: jnp.copy(x) if eqx.is_array(x) else x, tree)


class Engine:
    """The engine's step program for ``method`` (runloop.compile_step over trainer.pretrain_task)."""

    def __init__(self, method: Any, optim: Any, batch: dict[str, np.ndarray], mesh: jax.sharding.Mesh,
                 steps: int) -> None:
        cfg = trainer.TrainConfig(out_dir="unused", loop=runloop.LoopConfig(steps=steps, batch_size=len(
            batch["image"])))
        task = trainer.pretrain_task(method, optim, cfg)
        abstract = runloop.abstract_state(task.init)
        shardings = runloop.state_shardings(abstract, mesh, "replicate")
        self.state = runloop.init_sharded(task.init, (), abstract, shardings)
        self.batch = runloop.put_batch(batch, mesh)  # already prepare_batch's output (batch_spec's form)
        self.program = runloop.compile_step(task.step, self.state, self.batch, mesh=mesh, state_shardings=shardings,
                                            skip_nonfinite=False, measure_flops=True, args=task.step_args)
        self.flops = self.program.cost.flops
        self.views = jax.jit(lambda b, s: method.views(b, step=s, key=jax.random.key(1)))(
            self.batch, self.state.step)

    def run(self, n: int) -> None:
        for _ in range(n):
            self.state, metrics = self.program(self.state, self.batch)
        jax.block_until_ready((self.state, metrics))


class Augment:
    """The method's on-device augmentations alone (``method.views``), compiled on their own: the part of the
    engine step the bare step does not have."""

    def __init__(self, method: Any, engine: Engine) -> None:
        self.batch, self.step = engine.batch, jnp.copy(engine.state.step)  # the engine donates its state
        self.program = jax.jit(lambda b, s, k: method.views(b, step=s, key=k))
        self.key = jax.random.key(3)

    def run(self, n: int) -> None:
        for _ in range(n):
            views = self.program(self.batch, self.step, self.key)
        jax.block_until_ready(views)


class Bare:
    """Forward + backward + AdamW of the method's trainable model on fixed views."""

    def __init__(self, method: Any, engine: Engine) -> None:
        # copies: the engine's program donates (deletes) the state it was given
        trainable, method_state = engine.state.model, _copy_arrays(engine.state.extra)
        params, static = eqx.partition(trainable, eqx.is_inexact_array)
        tx = optax.adamw(1e-4)

        def step(params: Any, opt_state: Any, views: Any, key: jax.Array) -> tuple[Any, Any, jax.Array]:
            def loss_fn(p: Any) -> jax.Array:
                return method.loss(eqx.combine(p, static), method_state, views, step=jnp.int32(0), key=key)[0]

            loss, grads = jax.value_and_grad(loss_fn)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        self.params = jax.tree.map(jnp.copy, params)
        self.opt_state = tx.init(self.params)
        self.views, self.key = engine.views, jax.random.key(2)
        start = time.perf_counter()
        self.program = jax.jit(step, donate_argnums=(0, 1)).lower(
            self.params, self.opt_state, self.views, self.key).compile()
        self.flops = flopmeter.cost_from_compiled(self.program, compile_seconds=time.perf_counter() - start).flops

    def run(self, n: int) -> None:
        for _ in range(n):
            self.params, self.opt_state, loss = self.program(self.params, self.opt_state, self.views, self.key)
        jax.block_until_ready((self.params, loss))


def peak_for_device(device: jax.Device) -> tuple[float, str]:
    """(FLOP/s, description): the table's dense bf16 peak for a known accelerator, else the measured peak."""
    row = flopmeter.HardwareTable.shipped().for_device_kind(device.device_kind)
    if row is not None and device.platform != "cpu":
        return row.peak_flops, f"{row.name} dense bf16 peak {row.peak_flops / 1e12:,.0f} TFLOP/s (hardware table)"
    peak = flopmeter.peak_flops()
    return peak.flops_per_second, (f"measured peak {peak.flops_per_second / 1e9:,.1f} GFLOP/s "
                                   f"({'x'.join(map(str, peak.shape))} {peak.dtype} matmul, best of "
                                   f"{len(peak.trials)} shapes/dtypes)")


def bench(name: str, settings: dict[str, Any], *, dtype: str, steps: int, rounds: int, peak: float,
          mesh: jax.sharding.Mesh, profile: str | None = None) -> dict[str, Any]:
    method, optim = recipes.build_method(
        name, settings["model"], preset=settings["preset"], total_steps=1000, image_size=settings["image_size"],
        model_overrides={"compute_dtype": dtype}, method_overrides=DATASET_OVERRIDES.get(name, {}))
    batch = host_batch(method.batch_spec(settings["batch"]))
    engine = Engine(method, optim, batch, mesh, steps=1000)
    bare = Bare(method, engine)
    augment = Augment(method, engine)
    runners = (("engine", engine), ("bare", bare), ("augment", augment))
    for _, runner in runners:
        runner.run(2)
    times: dict[str, list[float]] = {label: [] for label, _ in runners}
    for _ in range(rounds):  # interleaved: all see the same machine load
        for label, runner in runners:
            start = time.perf_counter()
            runner.run(steps)
            times[label].append((time.perf_counter() - start) / steps)
    if profile is not None:  # where the bare model step's time goes (vs_timm's per-operation table)
        from vs_timm import profile_table

        print(f"\n{name}, bare model step:\n" + profile_table(lambda: bare.run(1), bare.program, 3,
                                                             str(Path(profile) / name)) + "\n", flush=True)
    b = settings["batch"]
    engine_s, bare_s = statistics.median(times["engine"]), statistics.median(times["bare"])
    return {"method": name, "engine_flops": engine.flops, "bare_flops": bare.flops, "engine_s": engine_s,
            "bare_s": bare_s, "augment_s": statistics.median(times["augment"]), "engine_ips": b / engine_s,
            "bare_ips": b / bare_s,
            "engine_mfu": engine.flops / engine_s / peak, "bare_mfu": bare.flops / bare_s / peak}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "configs" / "demo.py"),
                   help="sweep config whose backbone, image size, batch and preset are the defaults")
    p.add_argument("--model", default=None)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--batch", type=int, default=None, help="global batch (per device x devices)")
    p.add_argument("--preset", default=None)
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--methods", default=",".join(METHOD_NAMES), help="comma-separated")
    p.add_argument("--steps", type=int, default=5, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--profile", metavar="DIR", help="also trace 3 bare model steps per method into DIR/<method> "
                   "and print their time by XLA operation kind")
    p.add_argument("--no-reuse-host-memory", action="store_true",
                   help="skip flopmeter.reuse_host_memory() (XLA:CPU then page-faults its buffer in every step)")
    args = p.parse_args()
    reuse = False if args.no_reuse_host_memory else flopmeter.reuse_host_memory()  # before the first computation
    settings = demo_settings(Path(args.config))
    for key in ("model", "image_size", "batch", "preset"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if args.model is not None and args.image_size is None:
        settings["image_size"] = None  # the preset's own size (224 for vit-b16)
    device = jax.devices()[0]
    mesh = runloop.make_mesh()
    peak, peak_text = peak_for_device(device)
    print(f"{device.platform} {device.device_kind} x{mesh.devices.size} ({platform.processor() or platform.machine()}"
          f"), {settings['model']} @{settings['image_size'] or 'preset'} batch {settings['batch']} {args.dtype}, "
          f"preset {settings['preset']}; flopmeter.reuse_host_memory() {'on' if reuse else 'off'}; MFU against the "
          f"{peak_text}\n", flush=True)
    print("| method | engine GFLOPs/step | bare GFLOPs/step | engine ms | bare ms | augment ms | engine / bare | "
          "engine img/s | bare img/s | engine MFU | bare MFU |\n|---|---|---|---|---|---|---|---|---|---|---|",
          flush=True)
    for name in args.methods.split(","):
        r = bench(name, settings, dtype=args.dtype, steps=args.steps, rounds=args.rounds, peak=peak, mesh=mesh,
                  profile=args.profile)
        print(f"| {name} | {r['engine_flops'] / 1e9:,.2f} | {r['bare_flops'] / 1e9:,.2f} | "
              f"{r['engine_s'] * 1e3:,.1f} | {r['bare_s'] * 1e3:,.1f} | {r['augment_s'] * 1e3:,.1f} | "
              f"{r['engine_s'] / r['bare_s']:.2f} | {r['engine_ips']:,.0f} | {r['bare_ips']:,.0f} | "
              f"{r['engine_mfu']:.1%} | {r['bare_mfu']:.1%} |", flush=True)


if __name__ == "__main__":
    main()

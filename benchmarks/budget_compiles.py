"""Two budgets of each method in one process: how each pre-training run got its step program, and its cost.

    python benchmarks/budget_compiles.py                       # the demo's six methods, 3 and 5 steps
    python benchmarks/budget_compiles.py --methods dino --steps 224,896

Each run is `sslmethods.pretrain.trainer.train_method` (what `tools/pretrain.py` and a sweep's pre-training stage run)
of the demo recipe (`configs/demo.py`: backbone, image size, batch, preset) on one fixed random batch, with JAX's
persistent compilation cache on in a fresh temporary directory (its default 1 s threshold, as the tools). The
step's run length is data (`sslmethods.pretrain.run_length`), so the second budget of a method reads the program
the first compiled.
Prints, per run, the step program's source (`runloop.LoopResult.step_source`), the seconds `runloop.compile_step`
took (process CPU and wall) and the per-step losses' fingerprint; then the CPU seconds a reused program saves.
A script, not a test; the CPU seconds are the figure to compare on a loaded machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import runloop
import runloop.loop
from sslmethods.pretrain import recipes, trainer
from sslmethods.pretrain.presets import METHOD_NAMES
from train_step import DATASET_OVERRIDES, ROOT, demo_settings


class OneBatch:
    """The same host batch forever (images, a label and a multi-label list), with grain's state methods."""

    def __init__(self, batch: dict[str, np.ndarray]) -> None:
        self.batch, self.index = batch, 0

    def __iter__(self) -> OneBatch:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        self.index += 1
        return self.batch

    def get_state(self) -> dict[str, int]:
        return {"index": self.index}

    def set_state(self, state: dict[str, int]) -> None:
        self.index = int(state["index"])


def host_batch(batch: int, size: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    label = rng.integers(0, 10, batch).astype(np.int32)
    labels = np.full((batch, 8), -1, np.int32)
    labels[:, 0] = label
    return {"image": rng.uniform(0, 1, (batch, size, size, 3)).astype(np.float32), "label": label, "labels": labels}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default=",".join(METHOD_NAMES), help="comma-separated")
    p.add_argument("--steps", default="3,5", help="comma-separated step counts: the budgets of each method")
    args = p.parse_args()
    settings = demo_settings(ROOT / "configs" / "demo.py")
    budgets = [int(s) for s in args.steps.split(",")]
    timings: list[tuple[float, float]] = []
    compile_step = runloop.loop.compile_step

    def timed(*a, **k):  # the engine's one compile (or cache read) of the step, in CPU and wall seconds
        cpu, wall = time.process_time(), time.perf_counter()
        program = compile_step(*a, **k)
        timings.append((time.process_time() - cpu, time.perf_counter() - wall))
        return program

    runloop.loop.compile_step = timed
    tmp = Path(tempfile.mkdtemp())
    runloop.enable_compilation_cache(tmp / "jax_cache")
    print(f"{settings['model']} at {settings['image_size']} px, batch {settings['batch']}, preset "
          f"{settings['preset']}; cache {tmp / 'jax_cache'}\n")
    print("| method | steps | step program | CPU s | wall s | losses |\n|---|---:|---|---:|---:|---|")
    saved = 0.0
    for name in args.methods.split(","):
        first = None
        for steps in budgets:
            method, optim = recipes.build_method(name, settings["model"], preset=settings["preset"],
                                                 total_steps=steps, image_size=settings["image_size"],
                                                 method_overrides=DATASET_OVERRIDES.get(name, {}))
            cfg = trainer.TrainConfig(str(tmp / f"{name}-{steps}"), runloop.LoopConfig(
                steps=steps, batch_size=settings["batch"], log_every=1, print_progress=False))
            sources: list[str] = []
            batches = OneBatch(host_batch(settings["batch"], settings["image_size"]))
            summary, _ = trainer.train_method(method, optim, batches, cfg,
                                              log=lambda line, s=sources: s.append(line) if "step program" in line
                                              else None)
            losses = [r["loss"] for r in runloop.read_metrics(Path(cfg.out_dir) / "metrics.jsonl") if "loss" in r]
            cpu, wall = timings[-1]
            source = "cache" if "compilation cache" in sources[-1] else "compiled"
            first = cpu if first is None else first
            if source == "cache":
                saved += first - cpu
            print(f"| {name} | {steps} | {source} | {cpu:.2f} | {wall:.2f} | {losses[0]:.6f} .. {losses[-1]:.6f} |",
                  flush=True)
    print(f"\nCPU seconds saved by the reused programs: {saved:.1f}")


if __name__ == "__main__":
    main()

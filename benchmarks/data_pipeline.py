"""Is the input pipeline ever the bottleneck? Pipeline images/s next to the step's, and what the engine's loop
gets with both, at the demo config (configs/demo.py: backbone, image size, batch, fine-tuning settings).

    python benchmarks/data_pipeline.py                          # all methods, grain workers 0
    python benchmarks/data_pipeline.py --methods mae,clip --workers 0 2 --steps 60

Per pre-training method and grain worker count, on `fmnist_scenes` (the demo's build, 2000 images):
- pipeline: `sslmethods.pretrain.data.pretrain_loader` + the method's `prepare_batch` (host side), batches/s x
  batch, and the process's CPU time per image while reading (robust to the load of a shared machine);
- step: the engine's compiled step (`runloop.compile_step` of the run's task) on a batch already on the device;
- loop: `sslmethods.pretrain.trainer.train_method` (runloop) reading the real pipeline; the rate of its last logged
  interval (after compilation and warm-up, before the final checkpoint);
- serial: what the loop would reach if reading a batch and running a step never overlapped,
  1 / (1 / pipeline + 1 / step); overlap = (loop - serial) / (min(pipeline, step) - serial): 100% when the loop
  runs at the slower of the two, 0% when reading and stepping take turns.
The segmentation row does the same for fine-tuning (segmentation_loader, `segtransfer.finetune_run` from scratch).
A script, not a test: prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import runpy
import tempfile
import time
from pathlib import Path
from typing import Any

import flopdata
import flopmeter
import jax
import runloop
from segtransfer import SegmentationRun, SegmentationSpec, describe_segmentation_dataset, finetune_run
from segtransfer.segmentation.data import SegmentationData, segmentation_loader
from segtransfer.segmentation.run import build_model, finetune_task
from sslmethods.pretrain import recipes, trainer
from sslmethods.pretrain.data import PretrainData, pretrain_loader
from sslmethods.pretrain.presets import METHOD_NAMES

ROOT = Path(__file__).resolve().parents[1]


def rate(iterator: Any, batches: int, batch_size: int, prepare: Any = None) -> tuple[float, float]:
    """(images/s, this process's CPU ms per image) of ``batches`` batches from ``iterator`` (the first, worker
    start-up, is not timed). CPU time counts every thread of the process (grain's reading threads included, not
    worker processes): unlike images/s, it hardly moves with the load of a shared machine."""
    next(iterator)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        batch = next(iterator)
        if prepare is not None:
            prepare(batch)
    images = batches * batch_size
    return images / (time.perf_counter() - start), (time.process_time() - cpu) / images * 1e3


def step_rate(task: runloop.TrainTask, host_batch: dict[str, Any], steps: int) -> float:
    """Images/s of the engine's compiled step for ``task`` on one batch kept on the device."""
    mesh = runloop.make_mesh()
    abstract = runloop.abstract_state(task.init, *task.init_args)
    shardings = runloop.state_shardings(abstract, mesh, "replicate")
    state = runloop.init_sharded(task.init, task.init_args, abstract, shardings)
    batch = runloop.put_batch(task.prepare_batch(host_batch) if task.prepare_batch else host_batch, mesh)
    program = runloop.compile_step(task.step, state, batch, mesh=mesh, state_shardings=shardings,
                                   skip_nonfinite=False, measure_flops=False, args=task.step_args)
    for index in range(steps + 2):  # two warm-up steps
        if index == 2:
            jax.block_until_ready(state)
            start = time.perf_counter()
        state, metrics = program(state, batch)
    jax.block_until_ready((state, metrics))
    return steps * len(next(iter(host_batch.values()))) / (time.perf_counter() - start)


def last_interval_rate(run_dir: Path) -> float:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["images_per_second"] for r in records if r.get("images_per_second")][-1]


def overlap(pipe: float, step: float, loop: float) -> tuple[float, float]:
    serial = 1.0 / (1.0 / pipe + 1.0 / step)
    best = min(pipe, step)
    return serial, (loop - serial) / (best - serial)


def pretrain_row(name: str, settings: dict[str, Any], directory: Path, workers: int, steps: int,
                 tmp: Path) -> dict[str, float]:
    method, optim = recipes.build_method(name, settings["model"], preset=settings["preset"], total_steps=steps,
                                         image_size=settings["image_size"],
                                         method_overrides=recipes.dataset_overrides(name, directory))
    batch, size = settings["batch"], settings["image_size"]

    def loader() -> Any:
        return iter(pretrain_loader(PretrainData(str(directory), batch_size=batch, image_size=size,
                                                 worker_count=workers)))

    pipe, cpu = rate(loader(), steps, batch, method.prepare_batch)
    cfg = trainer.TrainConfig(out_dir=str(tmp / f"{name}-{workers}"), loop=runloop.LoopConfig(
        steps=steps, batch_size=batch, log_every=steps // 3, checkpoint_every=steps, print_progress=False))
    step = step_rate(trainer.pretrain_task(method, optim, cfg), next(loader()), steps)
    trainer.train_method(method, optim, loader(), cfg, log=lambda _: None)
    return {"pipeline": pipe, "cpu_ms": cpu, "step": step, "loop": last_interval_rate(Path(cfg.out_dir))}


def segmentation_row(settings: dict[str, Any], directory: Path, workers: int, steps: int,
                     tmp: Path) -> dict[str, float]:
    seg = settings["segmentation"]
    info = describe_segmentation_dataset(directory)
    spec = SegmentationSpec(batch=seg["batch"], image_size=seg["image_size"], head_channels=seg["head_channels"],
                            norm_groups=seg["norm_groups"], log_every=steps // 3, checkpoint_every=steps,
                            workers=workers)
    config = SegmentationRun(spec, dataset_dir=info.directory, num_classes=info.num_classes,
                             eval_split=info.eval_split, steps=steps, lr=1e-3, wd=0.05)
    loader = segmentation_loader(SegmentationData(info.directory, batch_size=seg["batch"],
                                                  num_classes=info.num_classes, train=True,
                                                  crop_size=seg["image_size"], worker_count=workers))
    pipe, cpu = rate(iter(loader), steps, seg["batch"])
    segmenter, _ = build_model(config, "scratch", model=settings["model"])
    step = step_rate(finetune_task(segmenter, config), next(iter(loader)), steps)
    out = tmp / f"seg-{workers}"
    finetune_run(config, encoder="scratch", model=settings["model"], out_dir=out, log=lambda _: None)
    return {"pipeline": pipe, "cpu_ms": cpu, "step": step, "loop": last_interval_rate(out)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "configs" / "demo.py"))
    p.add_argument("--methods", default=",".join(METHOD_NAMES), help="comma-separated; 'none' for none")
    p.add_argument("--workers", type=int, nargs="+", default=[0])
    p.add_argument("--steps", type=int, default=60, help="batches timed per rate")
    p.add_argument("--data-dir", default=str(ROOT / "runs" / "bench-data"))
    p.add_argument("--no-segmentation", action="store_true")
    p.add_argument("--no-reuse-host-memory", action="store_true",
                   help="skip flopmeter.reuse_host_memory() (XLA:CPU then page-faults its buffer in every step)")
    args = p.parse_args()
    reuse = False if args.no_reuse_host_memory else flopmeter.reuse_host_memory()  # before the first computation
    config = runpy.run_path(args.config)["get_config"]()
    settings = {"model": config.backbones[0], "image_size": config.image_size, "batch": config.batch,
                "preset": config.preset, "segmentation": dict(config.tasks.segmentation)}
    scenes = dict(config.build_datasets.get("fmnist_scenes", {}))
    directory = flopdata.build("fmnist_scenes", data_dir=args.data_dir, **scenes)
    device = jax.devices()[0]
    print(f"{device.platform} {device.device_kind} x{jax.device_count()} ({platform.processor() or platform.machine()}"
          f"), {settings['model']} @{settings['image_size']} batch {settings['batch']}, {directory}; "
          f"flopmeter.reuse_host_memory() {'on' if reuse else 'off'}\n")
    print("| pipeline | workers | pipeline img/s | pipeline CPU ms/img | step img/s | loop img/s | serial img/s | "
          "overlap |\n|---|---|---|---|---|---|---|---|", flush=True)
    methods = [] if args.methods == "none" else args.methods.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        for workers in args.workers:
            rows = [(f"pre-train {name}", pretrain_row, (name,)) for name in methods]
            if not args.no_segmentation:
                rows.append(("fine-tune segmentation", segmentation_row, ()))
            for label, measure, first in rows:
                r = measure(*first, settings, directory, workers, args.steps, Path(tmp))
                serial, share = overlap(r["pipeline"], r["step"], r["loop"])
                print(f"| {label} | {workers} | {r['pipeline']:,.0f} | {r['cpu_ms']:.2f} | {r['step']:,.0f} | "
                      f"{r['loop']:,.0f} | {serial:,.0f} | {share:.0%} |", flush=True)


if __name__ == "__main__":
    main()

"""The GPU suite: one command that measures flopwise on one accelerator and writes one JSON and one Markdown table.

    python benchmarks/gpu_suite.py --out runs/gpu_suite               # one H100/H200: ViT-B/16, 560 s budget
    python benchmarks/gpu_suite.py --tiny --out /tmp/suite            # the same code paths on a CPU, tiny sizes
    python benchmarks/gpu_suite.py --out runs/gpu_suite --sections env,peak,method:supervised,timm
    python benchmarks/gpu_suite.py --out runs/gpu_suite --resume      # again: rerun what did not succeed

Sections, in this order (each in its own subprocess with its own time box, so one that fails, runs out of memory
or hangs records its error and the rest still run; `--budget-s` bounds the whole suite):

- env: the card, its driver, jax/jaxlib and the CUDA versions jax reports (what exists on a CPU);
- peak: the measured bf16 matmul ceiling (`flopmeter.peak_flops`) next to the hardware table's dense bf16 figure;
- method:NAME for each of the six methods (`sslmethods.METHOD_NAMES`): the engine's pre-training step
  (`trainer.pretrain_task` compiled by `runloop.compile_step`, as the loop runs it: on-device augmentations,
  DINO's multi-crop, the method's loss and optimizer recipe) of ViT-B/16 at 224 px with bf16 matmuls
  (`compute_dtype="bfloat16"`; vitcore keeps softmax, norms and losses in float32) at the largest batch of
  `--batches` that fits (out of memory at compile or run: the next one): images/s, FLOPs of the compiled step
  (flopmeter, custom calls counted), the method's closed form (`analytic_macs`), MFU against the datasheet and
  against the measured ceiling, peak device memory;
- timm: the supervised and MAE steps in timm + PyTorch (bf16 autocast, fused AdamW, `torch.compile`) at the
  batch the flopwise step used: images/s and flopwise / timm;
- segmentation: the ViT-B/16 FCN fine-tuning step at 512 px (segtransfer, the study's head); detection: the
  ViT-B Mask R-CNN step at the study's 1024 px (segtransfer.detection): images/s, memory;
- data (run in the background from the start): a synthetic `image_folder` of 500x375 JPEGs built with
  `flopdata.build`; pipeline: the pre-training loader decoding and resizing them with grain workers on the
  host's cores (augmentations run on the device, in the step): images/s against the supervised step's;
- resume: `flopwise-pretrain` (ViT-B/16 supervised, bf16) for 200 steps on that folder, uninterrupted; then the
  same run killed (SIGKILL) after its step-100 checkpoint and resumed with --resume: the two loss curves must
  be equal.

Writes OUT/gpu_suite.json, OUT/gpu_suite.md and each section's record in OUT/sections/. Exit status 0 when
every section ran (a measurement missing a target is not a failure), 1 when some section failed or timed out,
2 for bad input (one line "error: ..."). A script, not a test; tests/test_gpu_suite.py runs --tiny.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
METHODS = ("supervised", "clip", "simclr", "byol", "dino", "mae")  # sslmethods.METHOD_NAMES, without importing jax
FLOPS_TOLERANCE = 0.02  # measured vs closed form (issue 28's target)
SCHEMA = 1


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes of one suite run: `FULL` on a GPU, `TINY` for the same code paths on a CPU in seconds."""

    model: str
    image_size: int | None  # None: the preset's (224 for vit-b16)
    preset: str
    dtype: str
    batches: tuple[int, ...]  # tried largest first
    steps: int  # timed steps per round
    rounds: int
    peak_shapes: tuple[tuple[int, int, int], ...]
    seg_model: str
    seg_size: int
    seg_batch: int
    seg_classes: int
    seg_head: tuple[int, int]  # channels, norm groups
    det_model: str
    det_preset: str
    det_size: int
    det_batch: int
    jpegs: int
    pipeline_batch: int
    pipeline_batches: int
    resume_steps: int
    resume_batch: int
    time_boxes: dict[str, int]  # seconds per section kind
    compile_backend: str  # torch.compile's


FULL = Settings(
    model="vit-b16", image_size=None, preset="paper:i1k", dtype="bfloat16", batches=(1024, 512, 256), steps=5,
    rounds=3, peak_shapes=((4096, 4096, 4096), (8192, 8192, 8192), (16384, 4096, 4096), (4096, 768, 3072)),
    seg_model="vit-b16", seg_size=512, seg_batch=16, seg_classes=150, seg_head=(256, 32),
    det_model="vit-b16", det_preset="vitdet", det_size=1024, det_batch=8, jpegs=2048, pipeline_batch=256,
    pipeline_batches=24, resume_steps=200, resume_batch=32,
    time_boxes={"env": 60, "peak": 60, "method": 110, "timm": 200, "segmentation": 120, "detection": 180,
                "data": 240, "pipeline": 90, "resume": 300},
    compile_backend="inductor")
TINY = Settings(
    model="vit-test", image_size=32, preset="demo", dtype="bfloat16", batches=(8, 4), steps=1, rounds=2,
    peak_shapes=((128, 128, 128), (256, 256, 256)),
    seg_model="vit-test", seg_size=32, seg_batch=4, seg_classes=5, seg_head=(8, 4),  # 4: pytest's 4 CPU devices
    det_model="vit-test", det_preset="tiny", det_size=64, det_batch=2, jpegs=24, pipeline_batch=8,
    pipeline_batches=2, resume_steps=6, resume_batch=4,
    # generous: on a shared 2-core machine a tiny section's imports and compiles take 20 to 120 s of wall time
    time_boxes={"env": 120, "peak": 120, "method": 400, "timm": 400, "segmentation": 400, "detection": 400,
                "data": 400, "pipeline": 400, "resume": 600},
    compile_backend="eager")  # dynamo's capture without inductor's C++/Triton code generation: seconds on a CPU


def section_names() -> list[str]:
    """Every section in the order run; data starts in the background first and is waited for in its place."""
    return ["env", "peak", "method:supervised", "method:mae", "timm",
            *[f"method:{m}" for m in METHODS if m not in ("supervised", "mae")],
            "segmentation", "detection", "data", "pipeline", "resume"]


def kind_of(section: str) -> str:
    return section.split(":")[0]


# ---------------------------------------------------------------------------------------------------- helpers
def is_oom(error: BaseException) -> bool:
    text = f"{type(error).__name__} {error}".lower()
    return "resource_exhausted" in text or "out of memory" in text or "outofmemory" in text


def timed_rounds(run: Any, steps: int, rounds: int) -> float:
    """Median seconds per step over `rounds` rounds of `steps` steps (`run(n)` runs n steps and waits)."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run(steps)
        times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


def device_memory() -> dict[str, int | None]:
    """The first device's peak and limit in bytes (None where the backend does not say, e.g. XLA:CPU)."""
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    return {"peak_bytes": stats.get("peak_bytes_in_use"), "limit_bytes": stats.get("bytes_limit")}


def compiled_memory(executable: Any, batch: int) -> dict[str, Any]:
    """What a compiled executable needs (arguments + outputs + temporaries, XLA's memory analysis, donated
    arguments counted once) next to the first device's limit; empty where the backend gives no analysis."""
    import jax

    try:
        m = executable.memory_analysis()
        needed = m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + m.temp_size_in_bytes
    except Exception:  # a backend without memory analysis
        return {}
    limit = (jax.devices()[0].memory_stats() or {}).get("bytes_limit")
    return {"batch": batch, "needed_bytes": int(needed), "argument_bytes": int(m.argument_size_in_bytes),
            "temp_bytes": int(m.temp_size_in_bytes), "limit_bytes": limit}


def read_section(out: Path, name: str) -> dict[str, Any] | None:
    path = out / "sections" / f"{name.replace(':', '-')}.json"
    return json.loads(path.read_text()) if path.exists() else None


def section_result(out: Path, name: str) -> dict[str, Any]:
    """The result of an earlier section that this one needs; RuntimeError naming it when it did not succeed."""
    record = read_section(out, name)
    if record is None or record.get("status") != "ok":
        raise RuntimeError(f"needs section {name}, which did not succeed")
    return record["result"]


def peak_reference() -> tuple[float | None, str | None]:
    """(dense bf16 FLOP/s, hardware table row name) of the first device, None for a device the table lacks."""
    import flopmeter
    import jax

    device = jax.devices()[0]
    row = flopmeter.HardwareTable.shipped().for_device_kind(device.device_kind)
    if row is None or device.platform == "cpu":
        return None, None
    return float(row.peak_flops), row.name


# --------------------------------------------------------------------------------------------------- sections
def run_env(cfg: Settings, out: Path) -> dict[str, Any]:
    import jax
    import jaxlib

    device = jax.devices()[0]
    info: dict[str, Any] = {
        "python": platform.python_version(), "platform": device.platform, "device_kind": device.device_kind,
        "device_count": jax.device_count(), "jax": jax.__version__, "jaxlib": jaxlib.__version__,
        "host_cpus": len(os.sched_getaffinity(0)), "host": platform.processor() or platform.machine(),
        "cuda": None, "cudnn": None, "driver": None, "card": None}
    try:  # the CUDA versions jax was built with and runs on (jax's own printout reads them the same way)
        from jax._src.lib import cuda_versions

        if cuda_versions is not None:
            info["cuda"] = {"runtime": cuda_versions.cuda_runtime_get_version(),
                            "driver_api": cuda_versions.cuda_driver_get_version()}
            info["cudnn"] = cuda_versions.cudnn_get_version()
    except Exception as error:  # CPU-only jaxlib, or an API that moved: the versions stay unknown
        info["cuda_error"] = f"{type(error).__name__}: {error}"
    try:
        info["jax_environment"] = jax.print_environment_info(return_string=True)
    except Exception as error:
        info["jax_environment"] = f"{type(error).__name__}: {error}"
    try:
        query = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                                "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        if query.returncode == 0 and query.stdout.strip():
            name, driver, memory = (s.strip() for s in query.stdout.splitlines()[0].split(","))
            info.update(card=name, driver=driver, card_memory=memory)
    except (OSError, subprocess.TimeoutExpired):
        pass  # no NVIDIA driver: a CPU or another accelerator
    return info


def run_peak(cfg: Settings, out: Path) -> dict[str, Any]:
    import flopmeter

    peak = flopmeter.peak_flops(shapes=cfg.peak_shapes, dtypes=("bfloat16",))
    datasheet, row = peak_reference()
    return {"measured_flops_per_s": peak.flops_per_second, "shape": list(peak.shape), "dtype": peak.dtype,
            "trials": [{"shape": list(t.shape), "dtype": t.dtype, "flops_per_s": t.flops_per_second}
                       for t in peak.trials],
            "datasheet_flops_per_s": datasheet, "hardware_row": row,
            "measured_over_datasheet": None if datasheet is None else peak.flops_per_second / datasheet}


def mfu_pair(flops: float, seconds: float, out: Path) -> dict[str, float | None]:
    """MFU against the datasheet's dense bf16 peak and against the measured ceiling (from the peak section)."""
    datasheet, _ = peak_reference()
    peak = read_section(out, "peak")
    measured = peak["result"]["measured_flops_per_s"] if peak and peak.get("status") == "ok" else None
    rate = flops / seconds
    return {"mfu": None if datasheet is None else rate / datasheet,
            "mfu_of_measured": None if measured is None else rate / measured}


def run_method(cfg: Settings, out: Path, name: str) -> dict[str, Any]:
    import flopmeter
    import runloop
    from sslmethods.pretrain import recipes, trainer
    from train_step import host_batch

    overrides = {"supervised": {"num_classes": 1000}, "clip": {"class_names": tuple("abcdefghij")}}.get(name, {})
    method, optim = recipes.build_method(name, cfg.model, preset=cfg.preset, total_steps=1000,
                                         image_size=cfg.image_size, model_overrides={"compute_dtype": cfg.dtype},
                                         method_overrides=overrides)
    tried: list[dict[str, Any]] = []
    for batch in cfg.batches:
        if _predicted_too_big(tried, batch):
            tried.append({"batch": batch, "outcome": "skipped: the larger batch's compiled memory predicts it "
                          "does not fit"})
            continue
        loop = runloop.LoopConfig(steps=1000, batch_size=batch)
        task = trainer.pretrain_task(method, optim, trainer.TrainConfig(out_dir="unused", loop=loop))
        try:  # host_batch: already prepare_batch's form (batch_spec's shapes), random
            r = run_engine_task(task, host_batch(method.batch_spec(batch)), cfg, out, prepared=True)
        except Exception as error:
            if not isinstance(error, TooBig) and not is_oom(error):
                raise
            tried.append({"batch": batch, "outcome": f"out of memory: {str(error).splitlines()[0][:300]}",
                          **getattr(error, "memory", {})})
            r = None
        if r is None:  # outside the except block, whose traceback holds the failed attempt's arrays
            gc.collect()
            continue
        tried.append({"batch": batch, "outcome": "ok"})
        closed = flopmeter.macs_to_flops(float(method.analytic_macs(batch)))
        ratio = r["flops_per_step"] / closed
        return {"method": name, "model": cfg.model, "image_size": method.image_size, "dtype": cfg.dtype,
                "tried": tried, **r, "closed_form_flops_per_step": closed, "flops_ratio": ratio,
                "flops_within_tolerance": abs(ratio - 1) <= FLOPS_TOLERANCE}
    raise RuntimeError(f"no batch of {list(cfg.batches)} fits: {tried}")


class TooBig(RuntimeError):
    """A compiled step whose memory analysis exceeds the device's memory: not run."""

    def __init__(self, memory: dict[str, int]) -> None:
        super().__init__(f"compiled step needs {memory['needed_bytes'] / 2**30:.1f} GiB of "
                         f"{memory['limit_bytes'] / 2**30:.1f} GiB")
        self.memory = memory


def _predicted_too_big(tried: list[dict[str, Any]], batch: int) -> bool:
    """Whether a larger batch that did not fit predicts that `batch` does not either: its fixed part (arguments:
    parameters, optimizer state, batch) plus its temporary buffers scaled down linearly, with 10% to spare."""
    for t in tried:
        if "needed_bytes" in t:
            scaled = t["argument_bytes"] + t["temp_bytes"] * batch / t["batch"]
            if scaled > 0.9 * t["limit_bytes"]:
                return True
    return False


def run_timm(cfg: Settings, out: Path) -> dict[str, Any]:
    import timm_reference
    import torch
    import vitcore
    from sslmethods.pretrain import recipes

    device = "cuda" if torch.cuda.is_available() else "cpu"
    c = vitcore.get_config(cfg.model)
    rows = {}
    for kind in ("supervised", "mae"):
        ours = section_result(out, f"method:{kind}")
        batch, image = ours["batch"], ours["image_size"]
        encoder = timm_reference.vit(image, c.patch_size, c.width, c.depth, c.num_heads, c.mlp_ratio,
                                     1000 if kind == "supervised" else 0)
        if kind == "supervised":
            model = encoder
        else:
            method, _ = recipes.build_method("mae", cfg.model, preset=cfg.preset, total_steps=1000,
                                             image_size=cfg.image_size)
            width, depth = method.decoder_dims
            model = timm_reference.mae_model(encoder, mask_ratio=method.mask_ratio, decoder_width=width,
                                             decoder_depth=depth,
                                             decoder_heads=vitcore.MAE_DECODER_PRESETS[method.decoder]["num_heads"],
                                             norm_pix_loss=method.norm_pix_loss)
        run_one = timm_reference.step(model, kind, batch, image, 1000, device=device, bf16_autocast=True,
                                      compile_backend=cfg.compile_backend, fused_adamw=True)

        def run(n: int, run_one: Any = run_one) -> None:
            for _ in range(n):
                loss = run_one()
            float(loss.detach())  # one synchronisation per round

        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        run(2)  # the first calls compile
        compile_seconds = time.perf_counter() - start
        seconds = timed_rounds(run, cfg.steps, cfg.rounds)
        rows[kind] = {"batch": batch, "images_per_s": batch / seconds, "seconds_per_step": seconds,
                      "compile_seconds": compile_seconds, "flopwise_images_per_s": ours["images_per_s"],
                      "flopwise_over_timm": ours["images_per_s"] * seconds / batch,
                      "peak_bytes": torch.cuda.max_memory_allocated() if device == "cuda" else None}
        del model, encoder, run_one
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
    import timm

    return {"device": device, "torch": torch.__version__, "timm": timm.__version__,
            "torch_cuda": torch.version.cuda, "compile_backend": cfg.compile_backend, "rows": rows}


def run_engine_task(task: Any, host: dict[str, Any], cfg: Settings, out: Path, *,
                    prepared: bool = False) -> dict[str, Any]:
    """Images/s, compiled FLOPs, MFU and memory of a runloop task's step (compiled by `runloop.compile_step`,
    as the training loop does) on one batch kept on the device; `prepared`: `host` is already in the form the
    task's `prepare_batch` returns. TooBig, before running, when the compiled step's memory analysis exceeds
    the device's memory."""
    import jax
    import runloop

    mesh = runloop.make_mesh()
    abstract = runloop.abstract_state(task.init, *task.init_args)
    shardings = runloop.state_shardings(abstract, mesh, "replicate")
    state = [runloop.init_sharded(task.init, task.init_args, abstract, shardings)]
    batch = runloop.put_batch(host if prepared or not task.prepare_batch else task.prepare_batch(host), mesh)
    program = runloop.compile_step(task.step, state[0], batch, mesh=mesh, state_shardings=shardings,
                                   skip_nonfinite=False, measure_flops=True, args=task.step_args)
    memory = compiled_memory(program._executable, len(next(iter(host.values()))))  # our own engine's executable
    if memory.get("limit_bytes") and memory["needed_bytes"] > memory["limit_bytes"]:
        raise TooBig(memory)

    def run(n: int) -> None:
        for _ in range(n):
            state[0], metrics = program(state[0], batch)
        jax.block_until_ready((state[0], metrics))

    run(2)
    seconds = timed_rounds(run, cfg.steps, cfg.rounds)
    b = len(next(iter(host.values())))
    return {"batch": b, "seconds_per_step": seconds, "images_per_s": b / seconds,
            "flops_per_step": program.cost.flops, "flops_notes": list(program.cost.notes),
            "compile_seconds": program.compile_seconds, **mfu_pair(program.cost.flops, seconds, out),
            **device_memory(), "compiled_bytes": memory.get("needed_bytes")}


def run_segmentation(cfg: Settings, out: Path) -> dict[str, Any]:
    import jax.random as jr
    import numpy as np
    import vitcore
    from segtransfer import SegmentationRun, SegmentationSpec
    from segtransfer.segmentation.run import finetune_task
    from segtransfer.segmentation.segmenter import create_segmenter

    channels, groups = cfg.seg_head
    spec = SegmentationSpec(steps=1000, batch=cfg.seg_batch, image_size=cfg.seg_size, lrs=(1e-4,), wds=(0.05,),
                            head_channels=channels, norm_groups=groups)
    config = SegmentationRun(spec, dataset_dir="unused (synthetic batch)", num_classes=cfg.seg_classes,
                             eval_split="validation", steps=1000, lr=1e-4, wd=0.05)
    encoder = vitcore.create(cfg.seg_model, key=jr.key(0), num_classes=0, image_size=cfg.seg_size,
                             compute_dtype=cfg.dtype)
    segmenter = create_segmenter(encoder, cfg.seg_classes, key=jr.key(1), image_size=cfg.seg_size,
                                 head_channels=channels, norm_groups=groups)
    rng = np.random.default_rng(0)
    s = cfg.seg_size
    host = {"image": rng.uniform(0, 1, (cfg.seg_batch, s, s, 3)).astype(np.float32),
            "mask": rng.integers(0, cfg.seg_classes, (cfg.seg_batch, s, s)).astype(np.int32)}
    return {"model": cfg.seg_model, "image_size": s, "dtype": cfg.dtype, "head_channels": channels,
            **run_engine_task(finetune_task(segmenter, config), host, cfg, out)}


def run_detection(cfg: Settings, out: Path) -> dict[str, Any]:
    import flopmeter
    import jax
    import jax.random as jr
    from detection_step import synthetic_batch
    from segtransfer.detection import (
        STUDY_RECIPE,
        batch_struct,
        detection_optimizer,
        detector_config,
        detector_from_scratch,
        init_detection_state,
        make_detection_step,
    )

    config = detector_config(cfg.det_preset, num_classes=80, image_size=cfg.det_size)
    model = detector_from_scratch(cfg.det_model, config, key=jr.key(0), compute_dtype=cfg.dtype,
                                  drop_path=STUDY_RECIPE.drop_path)
    optimizer = detection_optimizer(model, STUDY_RECIPE)
    state = [init_detection_state(model, optimizer, key=jr.key(1))]
    batch = synthetic_batch(batch_struct(cfg.det_batch, cfg.det_size, 100, 56))
    start = time.perf_counter()
    compiled = jax.jit(make_detection_step(optimizer), donate_argnums=0).lower(state[0], batch).compile()
    cost = flopmeter.cost_from_compiled(compiled, compile_seconds=time.perf_counter() - start)

    def run(n: int) -> None:
        for _ in range(n):
            state[0], metrics = compiled(state[0], batch)
        jax.block_until_ready((state[0], metrics))

    run(2)
    seconds = timed_rounds(run, cfg.steps, cfg.rounds)
    return {"model": cfg.det_model, "preset": cfg.det_preset, "image_size": cfg.det_size, "dtype": cfg.dtype,
            "batch": cfg.det_batch, "seconds_per_step": seconds, "images_per_s": cfg.det_batch / seconds,
            "flops_per_step": cost.flops, "compile_seconds": cost.compile_seconds,
            **mfu_pair(cost.flops, seconds, out), **device_memory()}


def run_data(cfg: Settings, out: Path) -> dict[str, Any]:
    """Writes cfg.jpegs ImageNet-like 500x375 JPEGs (smooth colour fields with noise, quality 90: about 70 KB
    each) and builds them into an image_folder dataset under OUT/data."""
    import flopdata
    import numpy as np
    from PIL import Image

    source = out / "data" / "jpegs"
    source.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    tables = {"train": [], "test": []}  # test: the kNN monitor's query split
    for index in range(cfg.jpegs):
        coarse = rng.uniform(0, 255, (8, 6, 3)).astype(np.uint8)
        image = np.asarray(Image.fromarray(coarse).resize((500, 375), Image.BICUBIC), np.float32)
        image += rng.normal(0, 12, image.shape)
        name = f"{index:05d}.jpg"
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(source / name, quality=90)
        split = "test" if index % 8 == 7 else "train"
        tables[split].append(f"{name},class{index % 10}")
    for split, rows in tables.items():
        (source / f"{split}.csv").write_text("image,label\n" + "\n".join(rows) + "\n")
    start = time.perf_counter()
    directory = flopdata.build("image_folder", data_dir=out / "data" / "built", source=str(source))
    sizes = [p.stat().st_size for p in source.glob("*.jpg")]
    return {"directory": str(directory), "jpegs": cfg.jpegs, "train": len(tables["train"]),
            "test": len(tables["test"]), "mean_jpeg_bytes": float(np.mean(sizes)),
            "build_seconds": time.perf_counter() - start}


def run_pipeline(cfg: Settings, out: Path) -> dict[str, Any]:
    from sslmethods.pretrain import recipes
    from sslmethods.pretrain.data import PretrainData, pretrain_loader

    data = section_result(out, "data")
    step = section_result(out, "method:supervised")
    workers = len(os.sched_getaffinity(0))
    method, _ = recipes.build_method("supervised", cfg.model, preset=cfg.preset, total_steps=1000,
                                     image_size=cfg.image_size, method_overrides={"num_classes": 10})
    loader = pretrain_loader(PretrainData(data["directory"], batch_size=cfg.pipeline_batch,
                                          image_size=method.image_size, worker_count=workers, decoded=False))
    iterator = iter(loader)
    method.prepare_batch(next(iterator))  # worker start-up, not timed
    start = time.perf_counter()
    for _ in range(cfg.pipeline_batches):
        method.prepare_batch(next(iterator))
    seconds = time.perf_counter() - start
    rate = cfg.pipeline_batches * cfg.pipeline_batch / seconds
    return {"workers": workers, "batch": cfg.pipeline_batch, "image_size": method.image_size,
            "images_per_s": rate, "supervised_step_images_per_s": step["images_per_s"],
            "pipeline_over_step": rate / step["images_per_s"]}


def _losses(run_dir: Path) -> dict[int, float]:
    """Step -> loss from metrics.jsonl; a step logged twice (before a kill and after the resume) keeps its last."""
    losses = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "loss" in record and "step" in record:
            losses[int(record["step"])] = float(record["loss"])
    return losses


def run_resume(cfg: Settings, out: Path) -> dict[str, Any]:
    data = section_result(out, "data")
    steps, every = cfg.resume_steps, cfg.resume_steps // 2
    env = {**os.environ,  # deterministic GPU reductions: the two runs' losses must be equal, not just close
           "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " --xla_gpu_deterministic_ops=true").strip()}

    def command(run_dir: Path, *extra: str) -> list[str]:
        image = [] if cfg.image_size is None else ["--image-size", str(cfg.image_size)]
        return [sys.executable, str(ROOT / "tools" / "pretrain.py"), "--method", "supervised", "--model",
                cfg.model, "--dataset", data["directory"], "--steps", str(steps), "--batch", str(cfg.resume_batch),
                "--preset", cfg.preset, *image, "--checkpoint-every", str(every), "--log-every", "1",
                "--eval-every", "0", "--workers", "0", "--out", str(run_dir),
                "--set", f"model.compute_dtype={cfg.dtype}", *extra]

    def finish(proc: subprocess.Popen, what: str) -> None:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{what} exited {proc.returncode}: {err.strip()[-600:]}")

    whole, killed = out / "resume" / "uninterrupted", out / "resume" / "killed"
    shutil.rmtree(out / "resume", ignore_errors=True)  # an earlier, failed attempt's runs (suite --resume)
    start = time.perf_counter()
    finish(subprocess.Popen(command(whole), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True),
           "the uninterrupted run")
    whole_seconds = time.perf_counter() - start
    proc = subprocess.Popen(command(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    checkpoint = killed / "checkpoints" / str(every)
    while proc.poll() is None and not (checkpoint.is_dir() and _checkpoint_complete(checkpoint)):
        time.sleep(0.05)
    killed_at = max(_losses(killed), default=0) if (killed / "metrics.jsonl").exists() else 0
    if proc.poll() is not None:
        raise RuntimeError(f"the run to be killed ended first (status {proc.returncode}): "
                           f"{proc.stderr.read().strip()[-600:]}")
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    finish(subprocess.Popen(command(killed, "--resume"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True), "the resumed run")
    a, b = _losses(whole), _losses(killed)
    common = sorted(set(a) & set(b))
    diff = max((abs(a[s] - b[s]) for s in common), default=None)
    return {"steps": steps, "checkpoint_step": every, "batch": cfg.resume_batch, "killed_after_step": killed_at,
            "logged_steps": len(common), "max_abs_loss_diff": diff,
            "equal": bool(common) and len(common) == steps and all(a[s] == b[s] for s in common),
            "uninterrupted_seconds": whole_seconds, "final_loss": a.get(steps),
            "first_loss": a.get(min(a)) if a else None}


def _checkpoint_complete(path: Path) -> bool:
    """orbax renames a checkpoint's temporary folder into place when it is complete; a step folder without a
    temporary suffix that holds files is complete."""
    return any(path.iterdir()) and not any(".orbax-checkpoint-tmp" in p.name for p in path.iterdir())


HOST_SECTIONS = ("timm", "data", "pipeline")  # sections whose own process needs no JAX accelerator
RUNNERS = {"env": run_env, "peak": run_peak, "timm": run_timm, "segmentation": run_segmentation,
           "detection": run_detection, "data": run_data, "pipeline": run_pipeline, "resume": run_resume}


def run_section(name: str, cfg: Settings, out: Path) -> int:
    """The child process: runs one section and writes its record (status ok or error)."""
    from runloop import write_json_atomic

    sys.path.insert(0, str(HERE))  # train_step, detection_step, timm_reference
    start = time.perf_counter()
    try:
        if kind_of(name) == "method":
            result = run_method(cfg, out, name.split(":", 1)[1])
        else:
            result = RUNNERS[name](cfg, out)
        record = {"section": name, "status": "ok", "result": result}
    except Exception as error:  # recorded, not raised: the suite goes on
        record = {"section": name, "status": "error", "error": f"{type(error).__name__}: {error}"[:2000],
                  "traceback": traceback.format_exc()[-4000:]}
    record["seconds"] = time.perf_counter() - start
    write_json_atomic(out / "sections" / f"{name.replace(':', '-')}.json", record)
    return 0 if record["status"] == "ok" else 1


# ------------------------------------------------------------------------------------------------ the suite
def targets(sections: dict[str, dict[str, Any]]) -> dict[str, bool | None]:
    """Issue 28's targets, each True/False, or None where this run could not tell (a section failed, or no
    datasheet peak on a CPU)."""
    def result(name: str) -> dict[str, Any] | None:
        record = sections.get(name)
        return record["result"] if record and record.get("status") == "ok" else None

    methods = [result(f"method:{m}") for m in METHODS]
    mfus = [None if r is None else r["mfu"] for r in methods]
    timm, pipe, resume = result("timm"), result("pipeline"), result("resume")
    return {
        "supervised_and_mae_mfu_ge_50pct": (None if None in (mfus[0], mfus[-1])
                                            else mfus[0] >= 0.5 and mfus[-1] >= 0.5),
        "every_method_mfu_ge_35pct": None if None in mfus else min(mfus) >= 0.35,
        "flopwise_ge_1.3x_timm": (None if timm is None
                                  else all(r["flopwise_over_timm"] >= 1.3 for r in timm["rows"].values())),
        "pipeline_ge_supervised_step": None if pipe is None else pipe["pipeline_over_step"] >= 1.0,
        "flops_within_2pct_of_closed_form": (None if None in methods
                                             else all(r["flops_within_tolerance"] for r in methods)),
        "resume_loss_curve_equal": None if resume is None else resume["equal"],
    }


def _num(value: Any, scale: float = 1.0, fmt: str = ",.1f") -> str:
    return "-" if value is None else format(value / scale, fmt)


def _gflops(flops: float | None) -> str:
    """GFLOPs with 4 significant digits at tiny sizes too (a vit-test step is 0.04 GFLOPs)."""
    return "-" if flops is None else f"{flops / 1e9:,.1f}" if flops >= 1e10 else f"{flops / 1e9:.4g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def markdown(report: dict[str, Any]) -> str:
    s = report["sections"]

    def result(name: str) -> dict[str, Any] | None:
        record = s.get(name)
        return record["result"] if record and record.get("status") == "ok" else None

    env, peak = result("env") or {}, result("peak")
    lines = [f"# GPU suite ({'tiny, CPU-sized' if report['tiny'] else 'full'}), {report['date']}", "",
             f"`{report['command']}`", "",
             f"- device: {env.get('card') or env.get('device_kind', '?')} ({env.get('platform', '?')} x"
             f"{env.get('device_count', '?')}), driver {env.get('driver') or '-'}; host {env.get('host', '?')}, "
             f"{env.get('host_cpus', '?')} cores; Python {env.get('python', '?')}",
             f"- jax {env.get('jax', '?')}, jaxlib {env.get('jaxlib', '?')}, CUDA {env.get('cuda') or '-'}, "
             f"cuDNN {env.get('cudnn') or '-'}"]
    if peak:
        sheet = ("no datasheet figure for this device" if peak["datasheet_flops_per_s"] is None else
                 f"datasheet dense bf16 {peak['datasheet_flops_per_s'] / 1e12:,.1f} TFLOP/s ({peak['hardware_row']}), "
                 f"measured / datasheet {peak['measured_over_datasheet']:.1%}")
        lines.append(f"- peak: measured bf16 matmul {peak['measured_flops_per_s'] / 1e12:,.3f} TFLOP/s at "
                     f"{'x'.join(map(str, peak['shape']))}; {sheet}")
    lines += ["", "| step | batch | images/s | GFLOPs/step (compiled) | closed form | ratio | MFU (datasheet) | "
              "MFU (measured peak) | peak memory GiB |", "|---|---|---|---|---|---|---|---|---|"]
    for name in [f"method:{m}" for m in METHODS] + ["segmentation", "detection"]:
        r = result(name)
        if r is None:
            continue
        closed = r.get("closed_form_flops_per_step")
        label = name.split(":")[-1] + (f" ({r['model']} @{r['image_size']})" if "model" in r else "")
        lines.append(f"| {label} | {r['batch']} | {r['images_per_s']:,.1f} | {_gflops(r['flops_per_step'])} | "
                     f"{_gflops(closed)} | {_num(r.get('flops_ratio'), 1, '.4f')} | {_pct(r['mfu'])} | "
                     f"{_pct(r['mfu_of_measured'])} | {_num(r['peak_bytes'], 2**30, '.1f')} |")
    timm = result("timm")
    if timm:
        lines += ["", f"timm {timm['timm']} + PyTorch {timm['torch']} on {timm['device']} (bf16 autocast, fused "
                  f"AdamW, torch.compile backend {timm['compile_backend']}):", "",
                  "| step | batch | flopwise images/s | timm images/s | flopwise / timm |", "|---|---|---|---|---|"]
        for kind, r in timm["rows"].items():
            lines.append(f"| {kind} | {r['batch']} | {r['flopwise_images_per_s']:,.1f} | {r['images_per_s']:,.1f} | "
                         f"{r['flopwise_over_timm']:.2f} |")
    pipe, resume = result("pipeline"), result("resume")
    if pipe:
        lines += ["", f"Input pipeline: {pipe['images_per_s']:,.0f} images/s ({pipe['workers']} grain workers, "
                  f"500x375 JPEGs to {pipe['image_size']} px) against the supervised step's "
                  f"{pipe['supervised_step_images_per_s']:,.0f}: {pipe['pipeline_over_step']:.2f}x"]
    if resume:
        lines += ["", f"Resume: {resume['steps']} steps, checkpoint at {resume['checkpoint_step']}, killed after "
                  f"step {resume['killed_after_step']}, resumed: loss curves "
                  f"{'equal' if resume['equal'] else 'DIFFERENT'} over {resume['logged_steps']} steps "
                  f"(max |difference| {resume['max_abs_loss_diff']})"]
    lines += ["", "| target | met |", "|---|---|"]
    lines += [f"| {k} | {'-' if v is None else 'yes' if v else 'NO'} |" for k, v in report["targets"].items()]
    failed = [(k, v) for k, v in s.items() if v.get("status") != "ok"]
    if failed:
        lines += ["", "Sections that did not finish:", ""]
        lines += [f"- {k}: {v.get('status')}: {v.get('error', '')[:300]}" for k, v in failed]
    lines += ["", "| section | status | seconds |", "|---|---|---|"]
    lines += [f"| {k} | {v.get('status')} | {v.get('seconds', 0):.1f} |" for k, v in s.items()]
    return "\n".join(lines) + "\n"


def launch(name: str, args: argparse.Namespace) -> subprocess.Popen:
    # an earlier call's failed record must not stand in for this attempt's
    (args.out / "sections" / f"{name.replace(':', '-')}.json").unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--section", name, "--out", str(args.out)]
    if args.tiny:
        command.append("--tiny")
    if args.batches:
        command += ["--batches", args.batches]
    # JAX's persistent compilation cache: a rerun of the suite (a section that timed out, say) skips the compiles
    cache = str(args.jax_cache or args.out / "jax_cache")
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": cache, "FLOPWISE_JAX_CACHE": cache}
    if name in HOST_SECTIONS:  # jax stays off the GPU: its preallocation would take torch's memory, or the card's
        env["JAX_PLATFORMS"] = "cpu"  # from the device sections that the data section runs beside
    # its own session, so a timed-out section is killed with everything it started (pretrain runs, grain workers)
    return subprocess.Popen(command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)


def wait(name: str, proc: subprocess.Popen, timeout: float, out: Path) -> dict[str, Any]:
    try:
        log, _ = proc.communicate(timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        return {"section": name, "status": "timeout", "error": f"killed after its time box of {timeout:.0f} s",
                "seconds": timeout, "log_tail": (log or "")[-2000:]}
    record = read_section(out, name)
    if record is None:  # the child died before writing (a crash in native code, killed for memory)
        return {"section": name, "status": "error", "error": f"exited {proc.returncode} without a record",
                "log_tail": (log or "")[-2000:]}
    return record


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="a new or empty folder for the JSON, table and logs")
    p.add_argument("--tiny", action="store_true", help="tiny sizes: the same code paths on a CPU in seconds")
    p.add_argument("--sections", default=None, help=f"comma-separated subset of {','.join(section_names())}")
    p.add_argument("--batches", default=None, help="comma-separated batches to try, largest first "
                   "(default 1024,512,256; tiny 8,4)")
    p.add_argument("--budget-s", type=float, default=None,
                   help="the whole suite's time box in seconds (default 560; tiny 3600)")
    p.add_argument("--resume", action="store_true",
                   help="continue the suite in --out: keep its sections that succeeded, run the others again and "
                   "rewrite the JSON and the table with all of them")
    p.add_argument("--jax-cache", type=Path, default=None,
                   help="JAX's persistent compilation cache (default OUT/jax_cache); reuse one across reruns")
    p.add_argument("--section", default=None, help=argparse.SUPPRESS)  # a child process: run this section
    args = p.parse_args(argv)
    return args


def check_args(args: argparse.Namespace) -> None:
    """Every check before any side effect; SystemExit(2) with one line naming the flag."""
    def fail(message: str) -> None:
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)

    known = section_names()
    if args.sections is not None:
        unknown = [n for n in args.sections.split(",") if n not in known]
        if unknown:
            fail(f"--sections: unknown {unknown}; expected names from {known}")
    if args.batches is not None:
        try:
            batches = [int(b) for b in args.batches.split(",")]
        except ValueError:
            batches = []
        if not batches or min(batches) < 1:
            fail(f"--batches {args.batches!r}: expected comma-separated positive integers")
    if args.budget_s is None:
        args.budget_s = 3600.0 if args.tiny else 560.0
    if not args.budget_s > 0:
        fail(f"--budget-s {args.budget_s}: expected > 0 seconds")
    if args.resume:
        if not (args.out / "sections").is_dir():
            fail(f"--out {args.out}: no suite to resume there (no sections/ folder)")
        return
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        fail(f"--out {args.out}: exists and is not an empty folder (the suite never overwrites a result; "
             "--resume continues one)")
    existing = next((p for p in args.out.parents if p.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        fail(f"--out {args.out}: cannot create it under {existing}")


def settings(args: argparse.Namespace) -> Settings:
    cfg = TINY if args.tiny else FULL
    if args.batches:
        cfg = dataclasses.replace(cfg, batches=tuple(sorted((int(b) for b in args.batches.split(",")), reverse=True)))
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.section is not None:
        return run_section(args.section, settings(args), args.out)
    check_args(args)
    cfg = settings(args)
    wanted = section_names() if args.sections is None else [n for n in section_names()
                                                             if n in args.sections.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    deadline = start + args.budget_s
    sections: dict[str, dict[str, Any]] = {}
    if args.resume:  # an earlier call's successes stand; everything else runs again
        for name in wanted:
            record = read_section(args.out, name)
            if record is not None and record.get("status") == "ok":
                sections[name] = record
    background = {}
    # host work: data runs beside the device sections until its place in the order (before pipeline and resume)
    if "data" in wanted and "data" not in sections:
        background["data"] = (launch("data", args), time.monotonic())
        print("[data] started in the background", flush=True)
    for index, name in enumerate(wanted, 1):
        box = cfg.time_boxes[kind_of(name)]
        if name in sections:
            print(f"[{index}/{len(wanted)}] {name}: ok in an earlier call, kept", flush=True)
            continue
        if name in background:
            proc, began = background.pop(name)
            sections[name] = wait(name, proc, min(box - (time.monotonic() - began), deadline - time.monotonic()),
                                  args.out)
        elif deadline - time.monotonic() < 5:
            sections[name] = {"section": name, "status": "skipped", "error": "the suite's --budget-s was spent",
                              "seconds": 0.0}
        else:
            print(f"[{index}/{len(wanted)}] {name} (time box {min(box, deadline - time.monotonic()):.0f} s)",
                  flush=True)
            sections[name] = wait(name, launch(name, args), min(box, deadline - time.monotonic()), args.out)
        record = sections[name]
        print(f"[{index}/{len(wanted)}] {name}: {record['status']} in {record.get('seconds', 0):.1f} s"
              + (f": {record.get('error', '')[:200]}" if record["status"] != "ok" else ""), flush=True)
    from runloop import write_bytes_atomic, write_json_atomic

    report = {"schema": SCHEMA, "tiny": args.tiny, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "command": " ".join(["python", "benchmarks/gpu_suite.py", *(argv if argv is not None else sys.argv[1:])]),
              "settings": dataclasses.asdict(cfg), "wall_seconds": time.monotonic() - start,
              "sections": {k: sections[k] for k in wanted if k in sections}}
    report["targets"] = targets(report["sections"])
    write_json_atomic(args.out / "gpu_suite.json", report)
    table = markdown(report)
    write_bytes_atomic(args.out / "gpu_suite.md", table.encode())
    print("\n" + table + f"\nwrote {args.out / 'gpu_suite.json'} and {args.out / 'gpu_suite.md'} "
          f"in {report['wall_seconds']:.0f} s", flush=True)
    return 0 if all(r["status"] == "ok" for r in report["sections"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())

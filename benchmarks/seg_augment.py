"""The demo's segmentation fine-tune with host vs device augmentation: CPU seconds, wall time and mIoU.

    python benchmarks/seg_augment.py --data-dir runs/demo/data                 # 2 pairs, seeds 0 and 1 each
    python benchmarks/seg_augment.py --data-dir runs/demo/data --pairs 3 --seeds 1

Runs ``flopwise-finetune-seg`` at the demo's settings (`configs/demo.py`: scratch `vit-test`, fmnist_scenes
rendered at 64 px, 56 px crops, 1000 steps at batch 16, lr 3e-3, wd 0.05, a 32-channel head, no colour jitter)
under ``/usr/bin/time -v``, alternating ``--augment host`` and ``--augment device`` so that a change in the
machine's load falls on both. Each run gets a fresh JAX compilation cache (each pays its compile) and fine-tunes
``--seeds`` seeds in one process, as a sweep worker does. Prints one row per run (user + sys CPU seconds per
fine-tune, wall, peak memory, mIoU per seed) and the load average before and after: a script, not a test; CPU
seconds are the figure to compare on a loaded machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DEMO = ["--encoder", "scratch", "--model", "vit-test", "--dataset", "fmnist_scenes", "--steps", "1000", "--batch",
        "16", "--image-size", "56", "--lrs", "0.003", "--wds", "0.05", "--head-channels", "32", "--norm-groups", "8",
        "--photometric", "none"]


def _time_field(text: str, name: str) -> str:
    match = re.search(rf"^\s*{re.escape(name)}: (.+)$", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/usr/bin/time -v printed no {name!r}:\n{text[-2000:]}")
    return match.group(1).strip()


def _wall_seconds(value: str) -> float:
    seconds = 0.0
    for part in value.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def run_once(augment: str, data_dir: str, seeds: int, work: Path) -> dict:
    out = work / f"{augment}-{len(list(work.iterdir()))}"
    env = dict(os.environ, FLOPWISE_JAX_CACHE=str(work / f"cache-{out.name}"))
    command = ["/usr/bin/time", "-v", "flopwise-finetune-seg", *DEMO, "--seeds", str(seeds), "--augment", augment,
               "--data-dir", data_dir, "--out", str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    cpu = float(_time_field(done.stderr, "User time (seconds)")) + float(_time_field(done.stderr,
                                                                                      "System time (seconds)"))
    result = json.loads((out / "result.json").read_text())
    return {"augment": augment, "cpu_s": cpu, "cpu_s_per_finetune": cpu / seeds,
            "wall_s": _wall_seconds(_time_field(done.stderr, "Elapsed (wall clock) time (h:mm:ss or m:ss)")),
            "max_rss_mb": int(_time_field(done.stderr, "Maximum resident set size (kbytes)")) / 1024,
            "miou": [round(100 * m, 2) for m in result["per_seed_miou"]],
            "flops_per_step": result["finetune_flops_per_step"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="holds fmnist_scenes (a demo's runs/demo/data)")
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=2, help="fine-tunes per run (seeds 0..N-1)")
    args = parser.parse_args(argv)
    print(f"load before: {os.getloadavg()}", flush=True)
    print("| run | augment | CPU s (user+sys) | CPU s / fine-tune | wall s | peak RSS MB | mIoU % per seed | "
          "FLOPs/step |\n|---|---|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as work:
        for pair in range(args.pairs):
            for augment in ("host", "device"):
                row = run_once(augment, args.data_dir, args.seeds, Path(work))
                print(f"| {pair + 1} | {augment} | {row['cpu_s']:.1f} | {row['cpu_s_per_finetune']:.1f} | "
                      f"{row['wall_s']:.0f} | {row['max_rss_mb']:.0f} | {row['miou']} | "
                      f"{row['flops_per_step']:.3g} |", flush=True)
    print(f"load after: {os.getloadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

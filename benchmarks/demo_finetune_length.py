"""How the demo's answer depends on the fine-tuning length: mIoU and CPU-seconds of scratch and chosen encoders
of a finished demo, fine-tuned for several lengths with the demo's segmentation settings.

    python benchmarks/demo_finetune_length.py --demo runs/demo --steps 1000,2000,3000
    python benchmarks/demo_finetune_length.py --demo runs/demo --steps 1000,3000 --seeds 0,1 \\
        --encoders clip-vit-test-fmnist_objects-8e+11F,mae-vit-test-fmnist_scenes-1.6e+12F

Every run uses `configs/demo.py`'s segmentation task (`config.tasks.segmentation`: batch, crop, lr, head...) with
only ``steps`` changed, on the demo's own `fmnist_scenes` (``<demo>/data``). ``--encoders``: run-folder name
prefixes under ``<demo>/runs`` (default: the two best explore points of ``<demo>/results.csv``); scratch is
always included. Runs go to ``--out`` (default: a temporary folder); a finished run there is read, not redone.
CPU-seconds are this process's user + system time around each fine-tune (compilation, the input pipeline and the
evaluation included; 0 for a run read back): compare them within one sitting only. Prints a markdown table.
A script, not a test.
"""

from __future__ import annotations

import argparse
import csv
import resource
import runpy
import tempfile
import time
from pathlib import Path
from typing import Any

import flopmeter
from segtransfer import SegmentationSpec, read_segmentation, run_segmentation

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def demo_task(config_path: Path) -> dict[str, Any]:
    """The segmentation task settings of a sweep config (default: the demo's), as `SegmentationSpec` fields."""
    config = runpy.run_path(str(config_path))["get_config"]()
    return dict(config.tasks.segmentation) | {"seeds": 1}


def best_explore(demo: Path, count: int) -> list[str]:
    """Run-folder names of the ``count`` best-scoring explore points of a finished demo."""
    with open(demo / "results.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["seed_role"] == "explore" and r["status"] == "done"]
    rows.sort(key=lambda r: -float(r["score"]))
    return [Path(r["run_dir"]).name for r in rows[:count]]


def encoder_dir(demo: Path, prefix: str) -> Path:
    matches = sorted(p for p in (demo / "runs").iterdir() if p.name.startswith(prefix))
    if len(matches) != 1:
        raise SystemExit(f"error: --encoders {prefix!r} matches {len(matches)} run folders under {demo / 'runs'}")
    return matches[0] / "pretrain"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--demo", type=Path, required=True, help="a finished demo's folder (runs/demo)")
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "demo.py")
    p.add_argument("--steps", default="1000,2000,3000", help="comma-separated fine-tuning lengths")
    p.add_argument("--seeds", default="0", help="comma-separated fine-tuning seeds")
    p.add_argument("--encoders", default=None, help="comma-separated run-folder name prefixes")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    flopmeter.reuse_host_memory()
    if not (args.demo / "results.csv").is_file():
        raise SystemExit(f"error: --demo {args.demo}: no results.csv (run `make demo` first)")
    steps = [int(s) for s in args.steps.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.encoders.split(",") if args.encoders else best_explore(args.demo, 2)
    encoders = {"scratch": "scratch"} | {name: str(encoder_dir(args.demo, name)) for name in names}
    task = demo_task(args.config)
    model = runpy.run_path(str(args.config))["get_config"]().backbones[0]
    out = args.out or Path(tempfile.mkdtemp(prefix="demo_finetune_length_"))
    scores: dict[tuple[str, int], list[float]] = {}
    costs: dict[tuple[str, int], list[float]] = {}
    for length in steps:
        spec = SegmentationSpec(**(task | {"steps": length}))
        for name, encoder in encoders.items():
            for seed in seeds:
                folder = out / f"{name.replace('+', '')}-{length}-seed{seed}"
                start, wall = cpu_seconds(), time.time()
                result = read_segmentation(folder) or run_segmentation(
                    spec, encoder=encoder, out_dir=folder, model=model if encoder == "scratch" else None,
                    data_dir=args.demo / "data", seeds=[seed])
                scores.setdefault((name, length), []).append(100 * result["miou"])
                costs.setdefault((name, length), []).append(cpu_seconds() - start)
                print(f"{name} {length} steps seed {seed}: mIoU {100 * result['miou']:.2f}, "
                      f"{cpu_seconds() - start:.0f} CPU-s, {time.time() - wall:.0f} s wall", flush=True)
    print(f"\nmIoU % on {task['dataset']} (mean over seeds {args.seeds}) and CPU-s per fine-tune; runs in {out}\n")
    print("| encoder | " + " | ".join(f"{s} steps" for s in steps) + " |")
    print("|---|" + "---:|" * len(steps))
    for name in encoders:
        cells = [f"{sum(scores[name, s]) / len(seeds):.2f} ({sum(costs[name, s]) / len(seeds):.0f} CPU-s)"
                 for s in steps]
        print(f"| {name} | " + " | ".join(cells) + " |")
    def mean(name: str, length: int) -> float:
        return sum(scores[name, length]) / len(seeds)

    gaps = [max(mean(n, s) for n in encoders if n != "scratch") - mean("scratch", s) for s in steps]
    print("| best minus scratch | " + " | ".join(f"{g:+.2f}" for g in gaps) + " |")


if __name__ == "__main__":
    main()

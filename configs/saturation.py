"""Saturation of transfer (Abnar et al. 2021): upstream accuracy for every run, layer-wise probes, e_DS fits.

    python tools/sweep.py --config configs/saturation.py --out runs/saturation          # CPU demonstration
    python tools/report.py runs/saturation --out runs/saturation/report                # saturation.png, ...

Four methods pre-train at two budgets; every run records its upstream accuracy (the kNN monitor on the
pre-training set's held-out split, the same protocol for all methods: ``upstream_accuracy``). Each encoder, and a
scratch one, is probed layer by layer for segmentation (a linear probe on every block of the frozen encoder; the
task's score is the best layer's mIoU). The CPU demonstration leaves segmentation fine-tuning out: at this size
150 fine-tuning steps left all nine encoders of configs/prepretrain.py at the background-everywhere 6.85% mIoU;
the ``:paper`` variant fine-tunes too. The report fits e_DS = k * e_US^a + e_IR per task with bootstrap intervals
(``saturation.png``: downstream vs upstream error with the fitted curve) and draws probe mIoU by layer, and the
best layer against upstream accuracy (``layer_transfer.png``).

``:paper``: the study's six methods on ViT-B/16 and ViT-L/16 on JFT at its budgets, ADE20K fine-tuning and
per-block probes.
"""

import ml_collections

# CPU demonstration: small, meant to finish in minutes on a laptop (docs/beyond.md gives the measured wall time).
METHODS = ("supervised", "simclr", "byol", "mae")
BUDGETS = (100, 400)
BATCH = 64
PROBE = dict(dataset="fmnist_scenes", image_size=64, train_examples=256, eval_examples=128, steps=100)

# A 6,000-image pre-training set (1,000 held out for the kNN monitor) builds in seconds.
DATA = {"fmnist_objects": {"num_examples": 6000}, "fmnist_scenes": {"num_examples": 600}}


def _demo():
    config = ml_collections.ConfigDict()
    config.name = "saturation"
    config.methods = METHODS
    config.backbones = ("vit-test",)
    config.datasets = ("fmnist_objects",)
    config.budgets = BUDGETS
    config.budget_unit = "steps"
    config.batch = BATCH
    config.preset = "demo"
    config.image_size = 32
    config.knn_bank = 500
    config.knn_query = 250
    config.scratch = True
    config.tasks = ml_collections.ConfigDict()
    config.tasks.layer_probe = PROBE
    config.pretrain = dict(log_every=50, checkpoint_every=1000)
    config.data_dir = "data"
    config.build_datasets = ml_collections.ConfigDict(DATA)
    return config


def _paper():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("paper", Path(__file__).with_name("paper.py"))
    paper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(paper)
    config = paper.get_config("jft")
    config.name = "saturation-paper"
    config.tasks.layer_probe = dict(dataset="ade20k", image_size=512, train_examples=2000, eval_examples=500)
    return config


def get_config(arg=None):
    if arg not in (None, "paper"):
        raise ValueError(f"configs/saturation.py:{arg}: expected no argument (the CPU demonstration) or 'paper'")
    return _paper() if arg == "paper" else _demo()

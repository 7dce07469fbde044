"""ConvNets vs ViTs at equal compute (Smith et al. 2023, "ConvNets Match Vision Transformers at Scale").

    python tools/sweep.py --config configs/convnets.py --out runs/convnets              # CPU demonstration
    python tools/report.py runs/convnets --out runs/convnets/report                    # upstream_loss.png, ...
    flopwise-sweep-flops --config configs/convnets.py:paper                     # paper scale, abstractly

Supervised pre-training of two ViTs and two NFNets (a grid of sizes x FLOP budgets, the same budgets for every
backbone: ``budget_unit="flops"``), NFNets with adaptive gradient clipping (``per_backbone``: AGC 0.01 instead of
the global-norm clip, the classifier left out); every encoder probed layer by layer for segmentation. The
report fits, per backbone family, upstream loss vs FLOPs (power law, R^2) on the compute-optimal frontier and
how size and steps grow along it, ConvNet and ViT on one axis (``upstream_loss.png``).

``:paper``: NFNet-F0..F3 and ViT-B/16, ViT-L/16 at 224 px, batch 4096, on a JFT-like set (the paper pre-trains
on JFT-4B) at three FLOP budgets, transferred with the study's ADE20K protocol. The NFNets train as Smith et
al. do (after Brock et al. 2021): SGD with Nesterov momentum 0.9, AGC 0.01, lr 0.1 x batch/256, weight decay
2e-5 (``NFNET_PAPER``); the CPU demonstration keeps the supervised AdamW recipe plus AGC (docs/deviations.md).
"""

import ml_collections
from flopstudy.sweep.presets import ADE20K_SEGMENTATION, PAPER_PRETRAIN, PAPER_SLURM

# CPU demonstration: small, meant to finish in minutes on a laptop (docs/beyond.md gives the measured wall time).
BACKBONES = ("vit-test", "vit-demo", "nfnet-test", "nfnet-demo")
BUDGETS = (5e10, 1.5e11)  # total pre-training FLOPs per run (whole program), the same for every backbone
BATCH = 32
IMAGE_SIZE = 32  # pre-training resolution (an NFNet needs a multiple of 32)
AGC = ("optim.agc=0.01", "optim.clip_norm=None")
# Brock et al. 2021 (NFNet-F, batch 4096), the recipe Smith et al. 2023 follow: Nesterov SGD, lr 0.1 per 256
# images, coupled weight decay 2e-5, AGC 0.01 with the classifier left out, no global-norm clip.
NFNET_PAPER = AGC + ("optim.optimizer=sgd", "optim.momentum=0.9", "optim.nesterov=True", "optim.lr=1.6",
                     "optim.weight_decay=2e-5")
PROBE = dict(dataset="fmnist_scenes", image_size=64, train_examples=256, eval_examples=128, steps=100)
# A 6,000-image pre-training set (1,000 held out for the kNN monitor) builds in seconds; runs see <= 7 epochs.
DATA = {"fmnist_objects": {"num_examples": 6000}, "fmnist_scenes": {"num_examples": 600}}


def _demo():
    config = ml_collections.ConfigDict()
    config.name = "convnets"
    config.methods = ("supervised",)
    config.backbones = BACKBONES
    config.datasets = ("fmnist_objects",)
    config.budgets = BUDGETS
    config.budget_unit = "flops"
    config.batch = BATCH
    config.preset = "demo"
    config.image_size = IMAGE_SIZE
    config.knn_bank = 500
    config.knn_query = 250
    config.scratch = False
    config.per_backbone = {name: {"set": AGC} for name in BACKBONES if name.startswith("nfnet")}
    config.tasks = ml_collections.ConfigDict()
    config.tasks.layer_probe = PROBE
    config.pretrain = dict(log_every=50, checkpoint_every=1000)
    config.data_dir = "data"
    config.build_datasets = ml_collections.ConfigDict(DATA)
    return config


def _paper():
    config = ml_collections.ConfigDict()
    config.name = "convnets-paper"
    config.methods = ("supervised",)
    config.backbones = ("nfnet-f0", "nfnet-f1", "nfnet-f2", "nfnet-f3", "vit-b16", "vit-l16")
    config.datasets = ("jft",)
    config.budgets = (1e20, 3e20, 1e21)
    config.budget_unit = "flops"
    config.batch = 4096
    config.preset = "paper:jft"
    config.image_size = 224
    config.scratch = True
    config.per_backbone = {f"nfnet-f{k}": {"set": NFNET_PAPER} for k in range(4)}
    config.tasks = ml_collections.ConfigDict()
    config.tasks.segmentation = dict(ADE20K_SEGMENTATION)
    config.pretrain = dict(PAPER_PRETRAIN)
    config.slurm = dict(PAPER_SLURM)
    return config


def get_config(arg=None):
    if arg not in (None, "paper"):
        raise ValueError(f"configs/convnets.py:{arg}: expected no argument (the CPU demonstration) or 'paper'")
    return _paper() if arg == "paper" else _demo()

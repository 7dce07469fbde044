"""MAE pre-pretraining (Singh et al. 2023): MAE first, then supervised from the MAE encoder, FLOPs of both counted.

    python tools/sweep.py --config configs/prepretrain.py --out runs/prepretrain        # CPU demonstration
    python tools/report.py runs/prepretrain --out runs/prepretrain/report              # prepretrain.png, ...
    flopwise-sweep-flops --config configs/prepretrain.py:paper                  # paper scale, abstractly

Supervised pre-training at two budgets, plain and as the second stage of a chain after MAE at two first-stage
budgets (``config.prepretrain``: the second stage is built on MAE's exported architecture and loads its encoder;
each MAE run is an ordinary run of the sweep, probed too). Every encoder, and a scratch one, is probed layer by
layer for segmentation (frozen encoder, a linear probe per block; the score is the best layer's mIoU): 150 steps
of segmentation fine-tuning on this CPU left every encoder at the background-everywhere 6.85% mIoU. The report
compares, with and without the first stage, the second stage's loss and the transfer score per second-stage FLOP
and per total FLOP (``prepretrain.png``).

``:paper``: MAE ViT-L/16 -> supervised ViT-L/16 at 224 px, batch 4096, on a JFT-like set (the paper uses IG-3B),
with the study's ADE20K transfer.
"""

import ml_collections
from flopstudy.sweep.presets import ADE20K_SEGMENTATION, PAPER_PRETRAIN, PAPER_SLURM

# CPU demonstration: small, meant to finish in minutes on a laptop (docs/beyond.md gives the measured wall time).
BUDGETS = (100, 300)  # second-stage (and plain) supervised steps at BATCH
FIRST_STAGE = (200, 600)  # MAE steps before it
BATCH = 64
# The plain supervised runs use MAE's fixed sin-cos position embedding too, so that with and without the first
# stage only the initialisation differs (the second stage is built on MAE's exported architecture).
SAME_ARCHITECTURE = ("model.pos_embed=sincos",)
PROBE = dict(dataset="fmnist_scenes", image_size=64, train_examples=256, eval_examples=128, steps=100)

# A 6,000-image pre-training set (1,000 held out for the kNN monitor) builds in seconds.
DATA = {"fmnist_objects": {"num_examples": 6000}, "fmnist_scenes": {"num_examples": 600}}


def _demo():
    config = ml_collections.ConfigDict()
    config.name = "prepretrain"
    config.methods = ("supervised",)
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
    config.prepretrain = dict(method="mae", budgets=FIRST_STAGE, then=("supervised",))
    config.per_method = {"supervised": {"set": SAME_ARCHITECTURE}}
    config.tasks = ml_collections.ConfigDict()
    config.tasks.layer_probe = PROBE
    config.pretrain = dict(log_every=20, checkpoint_every=1000)
    config.data_dir = "data"
    config.build_datasets = ml_collections.ConfigDict(DATA)
    return config


def _paper():
    config = ml_collections.ConfigDict()
    config.name = "prepretrain-paper"
    config.methods = ("supervised",)
    config.backbones = ("vit-l16",)
    config.datasets = ("jft",)
    config.budgets = (62_500, 125_000, 250_000)
    config.budget_unit = "steps"
    config.batch = 4096
    config.preset = "paper:jft"
    config.image_size = 224
    config.prepretrain = dict(method="mae", budgets=(62_500, 125_000), then=("supervised",))
    config.per_method = {"supervised": {"set": SAME_ARCHITECTURE}}
    config.tasks = ml_collections.ConfigDict()
    config.tasks.segmentation = dict(ADE20K_SEGMENTATION)
    config.pretrain = dict(PAPER_PRETRAIN)
    config.slurm = dict(PAPER_SLURM)
    return config


def get_config(arg=None):
    if arg not in (None, "paper"):
        raise ValueError(f"configs/prepretrain.py:{arg}: expected no argument (the CPU demonstration) or 'paper'")
    return _paper() if arg == "paper" else _demo()

"""The study on a user's own data: an image folder to pre-train on and a segmentation set in ADE20K's layout.

    python tools/sweep.py --config configs/own_data.py --out runs/own \\
        --config.build_datasets.image_folder.source=/path/to/my_images \\
        --config.build_datasets.ade20k.source=/path/to/my_segmentation

The walk-through, with the folder layouts, the report and the plan: docs/own-data.md. ``configs/own_data.py:smoke``
is the same sweep at toy size (`SMOKE`: supervised `vit-test` at 32 px, 2 and 4 pre-training steps, 2 fine-tuning
steps, scratch, 2 confirm seeds): minutes on a CPU, to check that the pipeline runs on the folders before the real
sweep (other methods: ``--config.methods``); its scores mean nothing.

The sweep builds both datasets first, under OUT/data (an identical earlier build there is reused), from the two
folders named on the command line; a missing or unreadable folder is one error line naming
``config.build_datasets.<dataset>`` before anything is written:
- ``image_folder``: ImageNet-style class folders (``train/<class>/*.jpg``: every method), or a folder of images
  with a ``train.csv``/``train.jsonl`` table of captions (CLIP and the self-supervised methods, not supervised:
  ``--config.methods="('clip','simclr','byol','dino','mae')"``). A ``test`` split (folder or table), when
  present, gives every run its held-out loss;
- ``ade20k``: ``images/{training,validation}/`` with ``annotations/{training,validation}/*.png`` (0 = ignored,
  1..150 = classes).

Defaults, for one GPU (every one can be changed with --config.<field>=value):
- six methods (supervised, CLIP, SimCLR, BYOL, DINO, MAE) pre-train ViT-S/16 at 224 px, batch 256, with the
  study's ImageNet recipe (``preset="paper:i1k"``) at three budgets of pre-training FLOPs, 1e17, 3e17 and 1e18
  (a supervised step is 7.1e12 FLOPs, an MAE step 1.0e13, measured by ``tools/profile_flops.py --model vit-s16
  --batch 256``: 1e17 is ~14,000 supervised steps, 1e18 ~141,000);
  the study's recipe warms up for a fixed 6,000-12,000 steps (supervised, CLIP, DINO), a large part of the
  shortest runs here, so their warmup is 5% of the run, as the other methods' is; MAE's learning rate
  follows MAE's own scaling rule (1.5e-4 x batch / 256) instead of the study's value for batch 4096;
- every encoder and a from-scratch baseline are fine-tuned for segmentation with the study's protocol (FCN head,
  512 px crops, batch 16, the study's augmentations) shortened to 16 epochs (the study: 80) and one learning
  rate (1e-4, the middle of the study's grid) with one explore seed; the best point of each method, and
  scratch, get four confirm seeds, on which the report tests each against scratch;
- no kNN monitor (it needs labels and a ``test`` split; with both, ``--config.knn_bank=1000
  --config.knn_query=500`` turns it on);
- with ``--executor slurm``: one job per run, each on one GPU of a node for at most 24 h (``config.slurm``; e.g.
  ``--config.slurm.slurm_partition=gpu``).
"""

import ml_collections
from flopstudy.sweep.presets import ADE20K_SEGMENTATION, ONE_GPU_SLURM

METHODS = ("supervised", "clip", "simclr", "byol", "dino", "mae")
BACKBONE = "vit-s16"
BUDGETS = (1e17, 3e17, 1e18)  # pre-training FLOPs (whole program)
BATCH = 256
FINETUNE_EPOCHS = 16.0
FINETUNE_LR = 1e-4
CONFIRM_SEEDS = 4
WARMUP = ("optim.warmup_steps=None", "optim.warmup_fraction=0.05")  # the study's fixed warmups outlast short runs
MAE_LR = f"optim.lr={1.5e-4 * BATCH / 256:g}"  # facebookresearch/mae: blr 1.5e-4 x batch / 256
# The toy size of `:smoke` (a check of the pipeline, not a result): every field that sets the cost.
SMOKE = {"methods": ("supervised",), "backbones": ("vit-test",), "image_size": 32, "batch": 8,
         "budgets": (2, 4), "budget_unit": "steps", "preset": "demo", "confirm_seeds": 2}
SMOKE_SEGMENTATION = {"epochs": None, "steps": 2, "batch": 4, "image_size": 32, "head_channels": 8, "norm_groups": 4}


def get_config(arg=None):
    if arg not in (None, "", "smoke"):
        raise ValueError(f"configs/own_data.py:{arg}: expected no argument or 'smoke'")
    config = ml_collections.ConfigDict()
    config.name = "own"
    config.methods = METHODS
    config.backbones = (BACKBONE,)
    config.datasets = ("image_folder",)
    config.budgets = BUDGETS
    config.budget_unit = "flops"
    config.batch = BATCH
    config.preset = "paper:i1k"
    config.knn_bank = 0
    config.knn_query = 0
    config.scratch = True
    config.per_method = ml_collections.ConfigDict({
        "supervised": {"set": WARMUP}, "clip": {"set": WARMUP}, "dino": {"set": WARMUP}, "mae": {"set": (MAE_LR,)}})
    config.tasks = ml_collections.ConfigDict()
    config.tasks.segmentation = dict(ADE20K_SEGMENTATION, dataset="ade20k", epochs=FINETUNE_EPOCHS,
                                     lrs=(FINETUNE_LR,), wds=(0.05,), seeds=1)
    config.confirm_seeds = CONFIRM_SEEDS
    config.confirm_by = ("method",)
    config.pretrain = dict(log_every=100, checkpoint_every=2000)
    config.data_dir = "data"  # relative: under the sweep's output folder
    # source None: the folders must be named on the command line (--config.build_datasets.<dataset>.source=PATH);
    # num_examples: at most this many images per split (None: all)
    config.build_datasets = ml_collections.ConfigDict({"image_folder": {"source": None, "num_examples": None},
                                                       "ade20k": {"source": None, "num_examples": None}})
    config.slurm = dict(ONE_GPU_SLURM)  # e.g. --config.slurm.slurm_partition=gpu
    if arg == "smoke":
        config.update(SMOKE)
        config.tasks.segmentation.update(SMOKE_SEGMENTATION)
        config.per_method = ml_collections.ConfigDict()  # the demo preset's own warmups and learning rates
    return config

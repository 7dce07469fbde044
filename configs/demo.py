"""The demo sweep: the study in miniature on the embedded Fashion-MNIST sets, sized for a 2-core CPU.

    python tools/sweep.py --config configs/demo.py --out runs/demo
    python tools/sweep.py --config configs/demo.py --out runs/demo --config.methods="('mae','clip')" \\
        --config.budgets="(150,300)"

Six methods pre-train `vit-test` on `fmnist_objects` (curated, object-centric) and `fmnist_scenes` (scene-level)
at three budgets; each encoder and a from-scratch baseline are fine-tuned for segmentation of `fmnist_scenes`;
the best point of each method and scratch get three fine-tuning seeds. The constants below are the knobs (they
are starting values, not tuned: see issue 15); every one can also be changed with --config.<field>=value.
"""

import ml_collections

METHODS = ("supervised", "clip", "simclr", "byol", "dino", "mae")
BACKBONE = "vit-test"
PRETRAIN_SETS = ("fmnist_objects", "fmnist_scenes")
BUDGETS = (300, 600, 1200)  # pre-training steps at BATCH images
BATCH = 64
IMAGE_SIZE = 32  # pre-training resolution
FINETUNE_STEPS = 600
FINETUNE_BATCH = 16
FINETUNE_IMAGE_SIZE = 64
FINETUNE_LR = 1e-3  # 1e-4 (the study's middle) stalls in so few steps
HEAD_CHANNELS = 32  # the study's 256-channel FCN head would be ~95% of vit-test's fine-tuning FLOPs
SCENES_EXAMPLES = 2000  # fmnist_scenes training images (the test split gets 1/6)
SEEDS_FOR_BEST = 3


def get_config(arg=None):
    del arg
    config = ml_collections.ConfigDict()
    config.name = "demo"
    config.methods = METHODS
    config.backbones = (BACKBONE,)
    config.datasets = PRETRAIN_SETS
    config.budgets = BUDGETS
    config.budget_unit = "steps"
    config.batch = BATCH
    config.preset = "demo"
    config.image_size = IMAGE_SIZE
    config.knn_bank = 1000
    config.knn_query = 500
    config.scratch = True
    config.per_method = ml_collections.ConfigDict()
    config.tasks = ml_collections.ConfigDict()
    config.tasks.segmentation = dict(
        dataset="fmnist_scenes", steps=FINETUNE_STEPS, batch=FINETUNE_BATCH, image_size=FINETUNE_IMAGE_SIZE,
        lrs=(FINETUNE_LR,), wds=(0.05,), seeds=1, head_channels=HEAD_CHANNELS, norm_groups=8, log_every=100,
        checkpoint_every=200)
    config.extra_seeds = SEEDS_FOR_BEST
    config.extra_seeds_by = ("method",)
    config.pretrain = dict(log_every=100, checkpoint_every=300)
    config.data_dir = "data"  # relative: under the sweep's output folder, so its dataset sizes clash with nothing
    config.build_datasets = ml_collections.ConfigDict({"fmnist_scenes": {"num_examples": SCENES_EXAMPLES}})
    return config

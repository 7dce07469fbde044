"""The demo sweep (`make demo`): the study in miniature on the embedded Fashion-MNIST sets, sized for a 2-core CPU.

    python tools/demo.py                                      # what `make demo` runs: this sweep + the report
    python tools/sweep.py --config configs/demo.py --out runs/demo --workers 2
    python tools/sweep.py --config configs/demo.py --out runs/demo --config.methods="('mae','clip')" \\
        --config.budgets="(4e11,8e11)"

Six methods pre-train `vit-test` (32 px, patch 8, width 32, 2 blocks) on `fmnist_objects` (curated,
object-centric) and on `fmnist_scenes` (scene-level) at three budgets of pre-training FLOPs (each method's
steps at batch 64 = budget / its measured FLOPs per step); each encoder and a from-scratch baseline
are fine-tuned for semantic segmentation of `fmnist_scenes` at 56 px with one (explore) seed; the best point of
each method, chosen on that seed, and scratch get four confirm seeds (1-4), and the report tests each chosen point
against scratch on them (Welch's t-test, Holm over the six points: docs/statistics.md, "Verdicts"; four, not three,
so that a method ahead by 6 seed standard deviations is found in 90% of sweeps). Every constant below can also
be changed with --config.<field>=value.

Demo choices (not the study's protocol; each measured on a 2-core AMD EPYC, XLA:CPU; docs/demo.md):
- Pre-training at 32 px (items fill 70-95% of an `fmnist_objects` image: ~26 px), fine-tuning at 56 px on
  scenes rendered at 64 px (items are 30-60% of a scene: 17-34 px at 56 px), so objects have about the same
  size in both. Fine-tuning at 32 px (a 4x4 token grid) left every encoder and scratch at 6.8-8.9% mIoU, near
  "background everywhere" (6.9%): no answer. At 56 px the best pre-trained encoders reach ~11.5% against ~9%.
- Fine-tuning: 1000 steps at batch 16, lr 3e-3 (500 steps, batch 8 or 48 px left everything within noise of
  scratch; lr 1e-3 learns less in 1000 steps), no colour jitter (the study's BYOL jitter slows learning in so
  short a run), a 32-channel FCN head (the study's 256 channels would be most of `vit-test`'s fine-tuning
  FLOPs). One fine-tune: 2.8e11 FLOPs (measured).
- Fine-tuning augments on the device (`augment="device"`: the random rescale, crop and flip batched inside the
  compiled step, `segtransfer.segmentation.device_augment`) instead of per image on the host: about 15% less
  CPU per fine-tune, mIoU within seed noise of the host path, 1.4% more FLOPs per step (docs/benchmarks.md,
  "Segmentation augmentation on the device").
- Budgets in FLOPs, 4e11 / 8e11 / 1.6e12: pre-training FLOPs above fine-tuning FLOPs at every point (1.4x, 2.9x
  and 5.7x one fine-tune), the study's regime as far as about 20 minutes of a 2-core CPU allow (5e11-2e12 took 26
  min with other jobs running; the study's own ratio is larger still).
- Supervised pre-training with weight decay 0.05 instead of the study's 0.3, which is harsh at this size.
- A smaller kNN monitor (500 bank / 250 query images), read from the decoded splits the worker holds;
  pre-training checkpoints every 1500 steps (a killed demo redoes at most that much of a run).
- Measured: docs/demo.md gives the wall time, CPU time, figure and verdicts of a run from a clean clone.
"""

import ml_collections

METHODS = ("supervised", "clip", "simclr", "byol", "dino", "mae")
BACKBONE = "vit-test"
PRETRAIN_SETS = ("fmnist_objects", "fmnist_scenes")
BUDGETS = (4e11, 8e11, 1.6e12)  # pre-training FLOPs (whole program), 1.4-5.7x one fine-tune's 2.8e11
BATCH = 64
IMAGE_SIZE = 32  # pre-training resolution (fmnist_objects is rendered at it; scenes are resized once, decoded)
FINETUNE_STEPS = 1000
FINETUNE_BATCH = 16
FINETUNE_IMAGE_SIZE = 56  # the crop; scenes are rendered at SCENES_IMAGE_SIZE
SCENES_IMAGE_SIZE = 64
FINETUNE_LR = 3e-3
HEAD_CHANNELS = 32  # the study's 256-channel FCN head would dominate vit-test's fine-tuning FLOPs
OBJECTS_EXAMPLES = 12000  # fmnist_objects training images (the longest run, supervised at 1.6e12, sees each ~35x)
SCENES_EXAMPLES = 2000  # fmnist_scenes training images (the test split gets 1/6)
CONFIRM_SEEDS = 4  # for each method's best point and scratch: 28 fine-tunes, 14 more than three seeds from seed 0


def get_config(arg=None):
    del arg
    config = ml_collections.ConfigDict()
    config.name = "demo"
    config.methods = METHODS
    config.backbones = (BACKBONE,)
    config.datasets = PRETRAIN_SETS
    config.budgets = BUDGETS
    config.budget_unit = "flops"
    config.batch = BATCH
    config.preset = "demo"
    config.image_size = IMAGE_SIZE
    config.knn_bank = 500
    config.knn_query = 250
    config.scratch = True
    config.per_method = ml_collections.ConfigDict({"supervised": {"set": ("optim.weight_decay=0.05",)}})
    config.tasks = ml_collections.ConfigDict()
    config.tasks.segmentation = dict(
        dataset="fmnist_scenes", steps=FINETUNE_STEPS, batch=FINETUNE_BATCH, image_size=FINETUNE_IMAGE_SIZE,
        lrs=(FINETUNE_LR,), wds=(0.05,), seeds=1, head_channels=HEAD_CHANNELS, norm_groups=8,
        photometric="none", augment="device", log_every=250, checkpoint_every=500)
    config.confirm_seeds = CONFIRM_SEEDS
    config.confirm_by = ("method",)
    config.pretrain_seeds = 1  # each chosen point pre-trained once: verdicts hold fine-tuning seed variance
    config.pretrain = dict(log_every=300, checkpoint_every=1500)
    config.data_dir = "data"  # relative: under the sweep's output folder, so its dataset sizes clash with nothing
    config.build_datasets = ml_collections.ConfigDict({
        "fmnist_objects": {"num_examples": OBJECTS_EXAMPLES, "image_size": IMAGE_SIZE},
        "fmnist_scenes": {"num_examples": SCENES_EXAMPLES, "image_size": SCENES_IMAGE_SIZE}})
    return config

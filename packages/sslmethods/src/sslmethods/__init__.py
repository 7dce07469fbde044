"""The six pre-training methods of the FLOPs study, augmentations, data pipelines and pre-training (through runloop).

The package has four rooms, each importing only the ones before it:

- ``sslmethods.blocks``: building blocks of methods: ``losses`` (the study's and SimSiam / VICReg / Barlow
  Twins), ``heads``, ``EncoderWithHead``, ``backbones`` (encoder flavours and closed-form MACs), ``ema``,
  ``schedules``, CLIP's ``captions`` and the view recipes of ``augment``;
- ``sslmethods.methods``: the method contract (``AbstractMethod``, ``methods.method``: the hooks and their
  defaults), the study's six methods and their registry ``METHODS``; ``get_method`` also resolves a user's method
  from ``"package.module:ClassName"``;
- ``sslmethods.pretrain``: pre-training a method through the engine: every option of a run (``PretrainSpec``:
  what ``flopwise-pretrain`` parses and a sweep builds; ``read_pretrain(out_dir)``: the spec a run directory was
  made from; a FLOP budget as the run's length), data pipeline, optimizers, presets, recipes, overrides,
  train state, step, kNN monitor, held-out set, stage-one encoders, export, the trainer;
- ``sslmethods.costs``: what one training step costs (``step_cost``) and the study's Figure 3 (``figure3``);

and ``sslmethods.cli`` holds the commands (``flopwise-pretrain``, ``flopwise-profile``).
"""

import sys

from .blocks import augment, augment_colour, augment_geometry, backbones, ema, heads, losses, schedules
from .blocks.augment import (
    ViewConfig,
    augment_batch,
    augment_view,
    byol_views,
    clip_views,
    dino_local_size,
    dino_views,
    mae_views,
    make_views,
    simclr_views,
    supervised_views,
)
from .blocks.backbones import (
    forward_macs,
    mae_flavour,
    mae_vit_config,
    square_image_size,
    train_macs,
)
from .blocks.ema import dino_center_update, ema_update
from .blocks.encoder_with_head import EncoderWithHead
from .blocks.heads import DINOHead, MLPHead, byol_mlp, simclr_projector
from .blocks.losses import (
    barlow_twins_loss,
    byol_loss,
    clip_loss,
    cosine_similarity,
    dino_loss,
    mae_loss,
    multilabel_targets,
    negative_cosine,
    nt_xent,
    softmax_xent,
    vicreg_loss,
)
from .blocks.schedules import (
    byol_tau,
    dino_teacher_momentum,
    dino_teacher_temperature,
    dino_weight_decay,
    warmup_cosine,
)
from .methods.byol import BYOL
from .methods.clip import CLIP
from .methods.dino import DINO
from .methods.mae import MAE
from .methods.method import AbstractMethod
from .methods.registry import METHODS, get_method
from .methods.simclr import SimCLR
from .methods.supervised import Supervised
from .pretrain import init_from
from .pretrain.command_line import read_pretrain
from .pretrain.spec import PretrainSpec

# `sslmethods.losses` is a module path that docs/design.md section 2 names as a contract: it keeps importing
# (`from sslmethods.losses import nt_xent`) now that the module lives in `blocks`.
sys.modules[f"{__name__}.losses"] = losses

# The one place the version is written (pyproject.toml reads it: [tool.setuptools.dynamic]).
__version__ = "0.2.0"

__all__ = [
    "BYOL",
    "CLIP",
    "DINO",
    "MAE",
    "SimCLR",
    "Supervised",
    "METHODS",
    "AbstractMethod",
    "PretrainSpec",
    "read_pretrain",
    "get_method",
    "DINOHead",
    "EncoderWithHead",
    "MLPHead",
    "ViewConfig",
    "augment",
    "augment_batch",
    "augment_colour",
    "augment_geometry",
    "augment_view",
    "backbones",
    "barlow_twins_loss",
    "byol_loss",
    "byol_mlp",
    "byol_tau",
    "byol_views",
    "clip_loss",
    "clip_views",
    "cosine_similarity",
    "dino_center_update",
    "dino_local_size",
    "dino_loss",
    "dino_teacher_momentum",
    "dino_teacher_temperature",
    "dino_views",
    "dino_weight_decay",
    "ema",
    "ema_update",
    "heads",
    "init_from",
    "losses",
    "mae_loss",
    "mae_views",
    "forward_macs",
    "mae_flavour",
    "mae_vit_config",
    "train_macs",
    "make_views",
    "multilabel_targets",
    "negative_cosine",
    "nt_xent",
    "schedules",
    "simclr_projector",
    "simclr_views",
    "softmax_xent",
    "square_image_size",
    "supervised_views",
    "vicreg_loss",
    "warmup_cosine",
]

"""The six pre-training methods of the FLOPs study, augmentations, data pipelines and pre-training (through runloop).

A method implements ``AbstractMethod`` (``sslmethods.method``: the hooks and their defaults); the study's six are
in ``METHODS``, and ``get_method`` also resolves a user's method from ``"package.module:ClassName"``. Building
blocks for new methods: ``losses`` (the study's and SimSiam / VICReg / Barlow Twins), ``heads``,
``EncoderWithHead``, ``backbones`` (encoder flavours and closed-form MACs) and the view recipes of ``augment``.
"""

from . import augment, augment_colour, augment_geometry, backbones, ema, heads, init_from, losses, schedules
from .augment import (
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
from .backbones import (
    forward_macs,
    mae_flavour,
    mae_vit_config,
    square_image_size,
    train_macs,
    vit_forward_macs,
    vit_train_macs,
)
from .byol import BYOL
from .clip import CLIP
from .dino import DINO
from .ema import dino_center_update, ema_update
from .encoder_with_head import EncoderWithHead
from .heads import DINOHead, MLPHead, byol_mlp, simclr_projector
from .losses import (
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
from .mae import MAE
from .method import AbstractMethod
from .registry import METHODS, get_method
from .schedules import (
    byol_tau,
    dino_teacher_momentum,
    dino_teacher_temperature,
    dino_weight_decay,
    warmup_cosine,
)
from .simclr import SimCLR
from .supervised import Supervised

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
    "vit_forward_macs",
    "vit_train_macs",
    "warmup_cosine",
]

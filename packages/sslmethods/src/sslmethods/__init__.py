"""The six pre-training methods of the FLOPs study, augmentations, data pipelines and pre-training (through runloop)."""

from . import augment, augment_colour, augment_geometry, ema, losses, schedules
from .augment import (
    ViewConfig,
    augment_batch,
    augment_view,
    byol_views,
    clip_views,
    dino_views,
    mae_views,
    make_views,
    simclr_views,
    supervised_views,
)
from .byol import BYOL
from .clip import CLIP
from .dino import DINO
from .ema import dino_center_update, ema_update
from .losses import byol_loss, clip_loss, dino_loss, mae_loss, multilabel_targets, nt_xent, softmax_xent
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
    "ViewConfig",
    "augment",
    "augment_batch",
    "augment_colour",
    "augment_geometry",
    "augment_view",
    "byol_loss",
    "byol_tau",
    "byol_views",
    "clip_loss",
    "clip_views",
    "dino_center_update",
    "dino_loss",
    "dino_teacher_momentum",
    "dino_teacher_temperature",
    "dino_views",
    "dino_weight_decay",
    "ema",
    "ema_update",
    "losses",
    "mae_loss",
    "mae_views",
    "make_views",
    "multilabel_targets",
    "nt_xent",
    "schedules",
    "simclr_views",
    "softmax_xent",
    "supervised_views",
    "warmup_cosine",
]

"""Transfer evaluation: ADE20K-protocol FCN segmentation with mIoU (COCO detection to come).

Public API: `metrics.confusion_matrix` / `metrics.miou` (mmseg semantics), `FCNHead`, `pixel_cross_entropy`,
`Segmenter` and its builders, the study's optimizer (`finetune_optimizer`, `warmup_poly_schedule`) and the
fine-tuning pieces (`train_step`, `evaluate`, `fit`). `segtransfer.data` holds the input pipelines.
"""

from . import metrics
from .fcn_head import FCNHead, upsample_bilinear
from .finetune import FitResult, center_crop, evaluate, fit, predict_logits, slide_logits, train_step
from .loss import pixel_cross_entropy
from .metrics import confusion_matrix, miou
from .optim import finetune_optimizer, warmup_poly_schedule
from .segmenter import (
    Segmenter,
    create_segmenter,
    segmenter_from_scratch,
    segmenter_from_timm,
    segmenter_lr_scale,
    segmenter_weight_decay_mask,
)

__all__ = [
    "metrics",
    "confusion_matrix",
    "miou",
    "FCNHead",
    "upsample_bilinear",
    "pixel_cross_entropy",
    "Segmenter",
    "create_segmenter",
    "segmenter_from_scratch",
    "segmenter_from_timm",
    "segmenter_lr_scale",
    "segmenter_weight_decay_mask",
    "finetune_optimizer",
    "warmup_poly_schedule",
    "train_step",
    "predict_logits",
    "slide_logits",
    "center_crop",
    "evaluate",
    "fit",
    "FitResult",
]

"""Transfer evaluation: ADE20K-protocol FCN segmentation with mIoU; COCO Mask R-CNN in `segtransfer.detection`.

Public API: `metrics.confusion_matrix` / `metrics.miou` (mmseg semantics), `FCNHead`, `pixel_cross_entropy`,
`Segmenter` and its builders, the study's optimizer (`finetune_optimizer`, `warmup_poly_schedule`) and the
fine-tuning pieces (`FinetuneState`, `make_finetune_step`, `evaluate`), and the protocol runner: encoders from a
pre-training run, a timm file or scratch (`load_encoder`), `SegmentationSpec` (every option of a fine-tuning
study, declared once) and `SegmentationRun` (one run of it), `finetune_run` (one run through the
`runloop` engine: checkpointed, resumable, the same-run check), fine-tune FLOPs (`train_step_cost`) and the
grid/seed selection writing ``result.json`` (`run_study`; `run_segmentation`/`read_segmentation` for a spec),
a `FinetuneResult` (`segtransfer.records`, with `DetectionResult` and `EncoderInfo`). `segtransfer.data` holds
the input pipelines; `segtransfer.layer_probe` the layer-wise linear probes of a frozen encoder (`probe_layers`,
`probe_dataset`).
"""

from . import layer_probe, metrics, protocol
from .encoders import check_provenance, encoder_kind, load_encoder, load_timm_state_dict
from .fcn_head import FCNHead, upsample_bilinear
from .finetune import (
    FinetuneState,
    center_crop,
    evaluate,
    init_finetune_state,
    make_finetune_step,
    predict_logits,
    slide_logits,
)
from .loss import pixel_cross_entropy
from .metrics import confusion_matrix, miou
from .optim import finetune_optimizer, warmup_poly_schedule
from .protocol import finetune_steps, study_grid, warmup_steps
from .records import ENCODER_KINDS, DetectionResult, EncoderInfo, FinetuneResult
from .run import finetune_run
from .segmenter import (
    Segmenter,
    create_segmenter,
    segmenter_from_scratch,
    segmenter_from_timm,
    segmenter_lr_scale,
    segmenter_weight_decay_mask,
)
from .spec import SegmentationRun, SegmentationSpec
from .step_flops import train_step_cost
from .study import read_segmentation, run_segmentation, run_study
from .transfer_data import describe_segmentation_dataset, whole_image_batches

# The one place the version is written (pyproject.toml reads it: [tool.setuptools.dynamic]).
__version__ = "0.2.0"

__all__ = [
    "metrics",
    "layer_probe",
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
    "FinetuneState",
    "init_finetune_state",
    "make_finetune_step",
    "predict_logits",
    "slide_logits",
    "center_crop",
    "evaluate",
    "protocol",
    "EncoderInfo",
    "ENCODER_KINDS",
    "FinetuneResult",
    "DetectionResult",
    "check_provenance",
    "encoder_kind",
    "load_encoder",
    "load_timm_state_dict",
    "SegmentationSpec",
    "SegmentationRun",
    "finetune_steps",
    "warmup_steps",
    "train_step_cost",
    "finetune_run",
    "run_study",
    "run_segmentation",
    "read_segmentation",
    "study_grid",
    "describe_segmentation_dataset",
    "whole_image_batches",
]

"""Transfer evaluation: ADE20K-protocol FCN segmentation with mIoU, COCO Mask R-CNN, layer-wise linear probes.

The package has three rooms over a shared floor:

- the floor (this folder): where a fine-tuned encoder comes from (`encoders`: `load_encoder`), the studies'
  ``result.json`` records (`records`: `FinetuneResult`, `DetectionResult`, `EncoderInfo`), what a transfer run
  and a transfer study do in their directories (`transfer_run`, `transfer_study`), dataset facts
  (`dataset_info`) and the grain loader both pipelines share (`record_loader`);
- `segtransfer.segmentation`: the FCN head, `Segmenter` and its builders, the loss, mIoU with mmseg semantics
  (`metrics`), the study's optimizer and protocol, photometric jitter, the input pipeline (`segmentation.data`),
  fine-tuning (`init_finetune_state`, `make_finetune_step` over `runloop.TrainState`, `evaluate`),
  `SegmentationSpec` (every option of a fine-tuning study, declared once) and `SegmentationRun` (one run of it),
  `finetune_run` (one run through the `runloop` engine: checkpointed, resumable, the same-run check), fine-tune
  FLOPs (`train_step_cost`) and the grid/seed selection writing ``result.json`` (`run_study`;
  `run_segmentation`/`read_segmentation` for a spec);
- `segtransfer.detection`: Mask R-CNN on a plain ViT or an NFNet (its own public face; `DetectionSpec`, every
  option of a detection study, and `run_detection`/`read_detection` are also exported here);
- `segtransfer.probe`: the layer-wise linear probes of a frozen encoder (`layer_probe`: `probe_layers`,
  `probe_dataset`), `LayerProbeSpec` (every option of a probe study) and `run_layer_probe`/`read_layer_probe`;

and `segtransfer.cli` holds the commands (`flopwise-finetune-seg`, `flopwise-finetune-det`,
`flopwise-probe-layers`); each parses its spec, with one flag per field. The names below
are the package's public face; `segtransfer.metrics` (`confusion_matrix`, `miou`) also imports as a module path.
"""

import sys

from .detection.spec import DetectionSpec
from .detection.study import read_detection, run_detection
from .encoders import check_provenance, encoder_kind, load_encoder, load_timm_state_dict
from .probe import layer_probe
from .probe.spec import LayerProbeSpec
from .probe.study import read_layer_probe, run_layer_probe
from .records import ENCODER_KINDS, DetectionResult, EncoderInfo, FinetuneResult
from .segmentation import metrics, protocol
from .segmentation.fcn_head import FCNHead, upsample_bilinear
from .segmentation.finetune import (
    center_crop,
    evaluate,
    init_finetune_state,
    make_finetune_step,
    predict_logits,
    slide_logits,
)
from .segmentation.loss import pixel_cross_entropy
from .segmentation.metrics import confusion_matrix, miou
from .segmentation.optim import finetune_optimizer, warmup_poly_schedule
from .segmentation.protocol import finetune_steps, study_grid, warmup_steps
from .segmentation.run import finetune_run
from .segmentation.segmenter import (
    Segmenter,
    create_segmenter,
    segmenter_from_scratch,
    segmenter_from_timm,
    segmenter_lr_scale,
    segmenter_weight_decay_mask,
)
from .segmentation.spec import SegmentationRun, SegmentationSpec
from .segmentation.step_flops import train_step_cost
from .segmentation.study import read_segmentation, run_segmentation, run_study
from .segmentation.transfer_data import describe_segmentation_dataset, whole_image_batches

# `segtransfer.metrics` is a module path that docs/design.md section 2 names as a contract: it keeps importing
# (`from segtransfer.metrics import miou`) now that the module lives in `segmentation`.
sys.modules[f"{__name__}.metrics"] = metrics

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
    "DetectionSpec",
    "run_detection",
    "read_detection",
    "LayerProbeSpec",
    "run_layer_probe",
    "read_layer_probe",
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

"""Mask R-CNN on a plain ViT or an NFNet (the study's COCO protocol, appendix A.6): static shapes, one jit per step.

Building blocks (one concept per module, re-exported flat): boxes (`pairwise_iou`, `encode_boxes`,
`decode_boxes`, `clip_boxes`), anchors (`pyramid_anchors`), padded greedy `nms`, `match_boxes` +
`sample_balanced`, `roi_align` / `multilevel_roi_align` / `assign_levels`, `SimpleFeaturePyramid`, `RPNHead` with
`propose` / `anchor_targets`, `BoxHead`, `MaskHead`, `sample_rois` / `mask_targets`, the five losses.

The detector: `DetectorConfig` (presets ``"vitdet"`` and ``"tiny"``, `detector_config`), `MaskRCNN`,
`create_detector` (around a pre-trained backbone, read through `vitcore.AbstractBackbone`),
`detector_from_scratch`; training:
`detection_loss`, `init_detection_state`, `make_detection_step` (a pure ``step_fn(state, batch)`` over the engine's
`runloop.TrainState`),
`detection_optimizer` with `DetectionRecipe` / `STUDY_RECIPE` / `VITDET_RECIPE` (`DETECTION_RECIPES`); inference
and evaluation: `detect` -> `Detections`, `coco_results` (boxes and RLE masks at the original size), `paste_masks`,
`coco_ground_truth`, `coco_evaluate`, `evaluate_detector`; data: `DetectionData`, `detection_loader`,
`describe_detection_dataset`.

Fine-tuning through the engine (``runloop.train``), as segmentation does: `DetectionRunConfig` (detector +
recipe + data; `detection_recipe` scales the study's recipe to other lengths), `detection_run` (one seed: run
directory, lock, same-run check, checkpoints, exact resume, FLOPs of the compiled step, pycocotools at the end)
and `detection_study` (seeds, medians, ``result.json`` as `segtransfer.DetectionResult`); `DetectionSpec`
(every option of a study: what the command parses and a sweep's detection task holds) and `run_detection` (the
study of a spec, with the command that reruns it in ``command.txt``). The command is
`segtransfer.cli.finetune_det` (``tools/finetune_det.py``).
"""

from .anchors import cell_anchors, level_anchors, pyramid_anchors
from .box_head import BoxHead
from .boxes import box_area, clip_boxes, decode_boxes, encode_boxes, nonempty, pairwise_iou
from .coco_eval import AP_NAMES, coco_evaluate
from .coco_format import coco_results
from .config import DETECTOR_PRESETS, DetectorConfig, InferenceConfig, ROIConfig, RPNConfig, detector_config
from .data import DetectionData, DetectionTransform, detection_loader
from .dataset_info import DetectionDatasetInfo, describe_detection_dataset
from .evaluate import evaluate_detector, predict_coco
from .feature_pyramid import SimpleFeaturePyramid
from .ground_truth import category_ids, coco_ground_truth
from .inference import Detections, detect
from .losses import mask_loss, roi_box_loss, roi_class_loss, rpn_box_loss, rpn_objectness_loss
from .mask_head import MaskHead
from .mask_paste import paste_masks
from .matching import match_boxes, sample_balanced
from .model import MaskRCNN, create_detector, detector_from_scratch, with_drop_path
from .nms import nms
from .objective import BATCH_FIELDS, detection_loss
from .optim import (
    DETECTION_RECIPES,
    STUDY_RECIPE,
    VITDET_RECIPE,
    DetectionRecipe,
    detection_optimizer,
    detector_weight_decay_mask,
    layer_decay_scales,
    warmup_step_schedule,
)
from .roi_align import assign_levels, multilevel_roi_align, roi_align
from .roi_targets import ROISample, mask_targets, sample_rois
from .rpn import AnchorTargets, Proposals, RPNHead, anchor_targets, propose
from .run import build_detector, detection_run
from .run_config import DetectionRunConfig, detection_recipe, detection_warmup_steps
from .spec import DetectionSpec
from .study import check_study_dir, detection_study, read_detection, run_detection
from .train_step import abstract_detection_state, batch_struct, init_detection_state, make_detection_step

__all__ = [
    "DETECTION_RECIPES",
    "AP_NAMES",
    "BATCH_FIELDS",
    "DETECTOR_PRESETS",
    "STUDY_RECIPE",
    "VITDET_RECIPE",
    "AnchorTargets",
    "BoxHead",
    "DetectionData",
    "DetectionDatasetInfo",
    "DetectionRecipe",
    "DetectionRunConfig",
    "DetectionTransform",
    "Detections",
    "DetectorConfig",
    "InferenceConfig",
    "MaskHead",
    "MaskRCNN",
    "Proposals",
    "ROIConfig",
    "ROISample",
    "RPNConfig",
    "RPNHead",
    "SimpleFeaturePyramid",
    "abstract_detection_state",
    "anchor_targets",
    "assign_levels",
    "batch_struct",
    "box_area",
    "build_detector",
    "category_ids",
    "cell_anchors",
    "check_study_dir",
    "clip_boxes",
    "coco_evaluate",
    "coco_ground_truth",
    "coco_results",
    "create_detector",
    "decode_boxes",
    "describe_detection_dataset",
    "detect",
    "detection_loader",
    "detection_loss",
    "detection_optimizer",
    "detection_recipe",
    "detection_run",
    "detection_study",
    "DetectionSpec",
    "read_detection",
    "run_detection",
    "detection_warmup_steps",
    "detector_config",
    "detector_from_scratch",
    "detector_weight_decay_mask",
    "encode_boxes",
    "evaluate_detector",
    "init_detection_state",
    "layer_decay_scales",
    "level_anchors",
    "make_detection_step",
    "mask_loss",
    "mask_targets",
    "match_boxes",
    "multilevel_roi_align",
    "nms",
    "nonempty",
    "pairwise_iou",
    "paste_masks",
    "predict_coco",
    "propose",
    "pyramid_anchors",
    "roi_align",
    "roi_box_loss",
    "roi_class_loss",
    "rpn_box_loss",
    "rpn_objectness_loss",
    "sample_balanced",
    "sample_rois",
    "warmup_step_schedule",
    "with_drop_path",
]

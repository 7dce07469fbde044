"""`DetectorConfig`: everything that fixes the Mask R-CNN's architecture and its train/test-time sampling.

Presets (`DETECTOR_PRESETS`, `detector_config`):
- ``"vitdet"``: the study's detector (appendix A.6), i.e. detectron2's ViTDet Mask R-CNN (``mask_rcnn_vitdet``
  on ``mask_rcnn_fpn``) with the plain, unwindowed ViT: 1024x1024 inputs; pyramid 256 wide at scales 4/2/1/0.5 +
  p6; anchors 32..512 on strides 4..64, ratios 0.5/1/2; RPN with 2 convs, IoU 0.3/0.7 + low-quality matches, 256
  anchors per image at 50% positive, per-level top 2000 (train) / 1000 (test) before NMS 0.7 and 1000 after; ROI
  heads on p2..p5: 512 ROIs per image, 25% foreground at IoU 0.5, ground truth appended, RoIAlign aligned with
  sampling ratio 2 (7x7 boxes, 14x14 masks; detectron2's is 0, adaptive, which ``ROIConfig(sampling_ratio=0)``
  selects: `segtransfer.detection.roi_align`, at most 8 samples per bin and axis), box head 4 conv (256,
  LayerNorm) + fc 1024, class-specific deltas with weights 10/10/5/5, mask head 4 conv + deconv + per-class
  28x28; inference score > 0.05, per-class NMS 0.5, top 100.
- ``"tiny"``: the same structure, narrow and with few proposals, for 64x64 inputs on a CPU (tests, demos).
"""

from __future__ import annotations

import dataclasses

__all__ = ["RPNConfig", "ROIConfig", "InferenceConfig", "DetectorConfig", "DETECTOR_PRESETS", "detector_config"]


def _positive_ints(obj, names):
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{type(obj).__name__}.{name}={value!r}; expected a positive int")


def _fractions(obj, names):
    for name in names:
        value = getattr(obj, name)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{type(obj).__name__}.{name}={value!r}; expected a value in [0, 1]")


@dataclasses.dataclass(frozen=True)
class RPNConfig:
    """Region proposal network: head depth, anchor matching and sampling, proposal selection."""

    num_convs: int = 2
    negative_iou: float = 0.3  # IoU below this: background anchor
    positive_iou: float = 0.7  # IoU at or above this: object anchor (plus low-quality matches)
    batch_per_image: int = 256
    positive_fraction: float = 0.5
    pre_nms_topk_train: int = 2000  # per level
    post_nms_topk_train: int = 1000  # per image
    pre_nms_topk_test: int = 1000
    post_nms_topk_test: int = 1000
    nms_threshold: float = 0.7

    def __post_init__(self):
        _positive_ints(self, ("num_convs", "batch_per_image", "pre_nms_topk_train", "post_nms_topk_train",
                              "pre_nms_topk_test", "post_nms_topk_test"))
        _fractions(self, ("negative_iou", "positive_iou", "positive_fraction", "nms_threshold"))
        if self.negative_iou > self.positive_iou:
            raise ValueError(f"RPNConfig.negative_iou={self.negative_iou} > positive_iou={self.positive_iou}")


@dataclasses.dataclass(frozen=True)
class ROIConfig:
    """ROI heads: proposal sampling, pooling, box and mask head sizes, box-delta weights, level assignment."""

    batch_per_image: int = 512
    positive_fraction: float = 0.25
    foreground_iou: float = 0.5
    box_pool_size: int = 7
    mask_pool_size: int = 14
    sampling_ratio: int = 2
    conv_channels: int = 256
    box_convs: int = 4
    fc_dim: int = 1024
    mask_convs: int = 4
    box_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    canonical_size: float = 224.0  # a box of this size is pooled from canonical_level (stride 2**level)
    canonical_level: int = 4

    def __post_init__(self):
        ratio = self.sampling_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 0:
            raise ValueError(f"ROIConfig.sampling_ratio={self.sampling_ratio!r}; expected a positive int, or 0 for "
                             "adaptive sampling (detectron2's default)")
        _positive_ints(self, ("batch_per_image", "box_pool_size", "mask_pool_size",
                              "conv_channels", "box_convs", "fc_dim", "mask_convs", "canonical_level"))
        _fractions(self, ("positive_fraction", "foreground_iou"))
        if len(self.box_weights) != 4 or min(self.box_weights) <= 0:
            raise ValueError(f"ROIConfig.box_weights={self.box_weights!r}; expected 4 positive weights")

    @property
    def max_foreground(self) -> int:
        """ROIs per image that can be foreground (the mask head's fixed batch)."""
        return int(self.batch_per_image * self.positive_fraction)


@dataclasses.dataclass(frozen=True)
class InferenceConfig:
    """Test-time filtering. ``max_candidates`` (box, class) pairs with the highest scores enter the per-class NMS:
    the result equals NMS over all pairs whenever those candidates yield ``max_detections`` survivors or hold every
    pair above ``score_threshold`` (`segtransfer.detection.detect` reports when neither holds)."""

    score_threshold: float = 0.05
    nms_threshold: float = 0.5
    max_detections: int = 100
    max_candidates: int = 2000

    def __post_init__(self):
        _positive_ints(self, ("max_detections", "max_candidates"))
        _fractions(self, ("score_threshold", "nms_threshold"))
        if self.max_candidates < self.max_detections:
            raise ValueError(
                f"InferenceConfig.max_candidates={self.max_candidates} < max_detections={self.max_detections}"
            )


@dataclasses.dataclass(frozen=True)
class DetectorConfig:
    """The whole detector. ``anchor_sizes`` has one size per pyramid level (``len(scale_factors) + 1``);
    ``aspect_ratios`` are height / width. Classes are 0..num_classes-1; index num_classes is background."""

    num_classes: int
    image_size: int = 1024
    pyramid_channels: int = 256
    scale_factors: tuple[float, ...] = (4.0, 2.0, 1.0, 0.5)
    anchor_sizes: tuple[float, ...] = (32.0, 64.0, 128.0, 256.0, 512.0)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    rpn: RPNConfig = RPNConfig()
    roi: ROIConfig = ROIConfig()
    inference: InferenceConfig = InferenceConfig()

    def __post_init__(self):
        _positive_ints(self, ("num_classes", "image_size", "pyramid_channels"))
        if len(self.anchor_sizes) != len(self.scale_factors) + 1:
            raise ValueError(
                f"DetectorConfig.anchor_sizes={self.anchor_sizes!r} has {len(self.anchor_sizes)} sizes; expected "
                f"{len(self.scale_factors) + 1} (one per scale factor {self.scale_factors} plus the top level)"
            )
        if not self.aspect_ratios or min(self.aspect_ratios) <= 0:
            raise ValueError(f"DetectorConfig.aspect_ratios={self.aspect_ratios!r}; expected positive ratios")

    @property
    def num_anchors_per_cell(self) -> int:
        return len(self.aspect_ratios)


_TINY = dict(
    image_size=64,
    pyramid_channels=32,
    anchor_sizes=(8.0, 16.0, 32.0, 64.0, 128.0),
    rpn=RPNConfig(pre_nms_topk_train=200, post_nms_topk_train=100, pre_nms_topk_test=100, post_nms_topk_test=50,
                  batch_per_image=128),
    roi=ROIConfig(batch_per_image=64, conv_channels=32, fc_dim=64, canonical_size=32.0, canonical_level=3),
    inference=InferenceConfig(max_detections=20, max_candidates=200),
)

DETECTOR_PRESETS: dict[str, dict] = {"vitdet": {}, "tiny": _TINY}


def detector_config(preset: str, *, num_classes: int, **overrides) -> DetectorConfig:
    """The preset's `DetectorConfig` for ``num_classes`` with field ``overrides`` applied."""
    if preset not in DETECTOR_PRESETS:
        raise ValueError(f"preset={preset!r} is not a detector preset; expected one of {sorted(DETECTOR_PRESETS)}")
    fields = {f.name for f in dataclasses.fields(DetectorConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"unknown DetectorConfig override(s) {unknown}; valid fields are {sorted(fields)}")
    return DetectorConfig(num_classes=num_classes, **{**DETECTOR_PRESETS[preset], **overrides})

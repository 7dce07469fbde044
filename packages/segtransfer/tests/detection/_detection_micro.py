"""The micro detector configuration the model and run tests share (32x32 inputs, a few channels, few samples)."""

from segtransfer.detection import InferenceConfig, ROIConfig, RPNConfig

MICRO = dict(
    image_size=32,
    pyramid_channels=8,
    scale_factors=(2.0, 1.0),
    anchor_sizes=(8.0, 16.0, 32.0),
    rpn=RPNConfig(num_convs=1, batch_per_image=32, pre_nms_topk_train=40, post_nms_topk_train=24,
                  pre_nms_topk_test=40, post_nms_topk_test=24),
    roi=ROIConfig(batch_per_image=16, conv_channels=8, box_convs=1, mask_convs=1, fc_dim=16, canonical_size=16.0,
                  canonical_level=3),
    inference=InferenceConfig(max_detections=5, max_candidates=40, score_threshold=0.0),
)

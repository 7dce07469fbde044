"""The six pre-training methods of the FLOPs study, augmentations, data pipelines and the training engine."""

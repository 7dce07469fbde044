"""Mask R-CNN on a plain ViT (the study's COCO protocol, appendix A.6), static-shape and jit-compiled."""

"""Equinox Vision Transformers, the MAE decoder, CLIP text encoders and timm weight import."""

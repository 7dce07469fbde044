"""A lower bound of one example's memory in a training step of a backbone, from its config alone.

``example_memory_floor(vitcore.get_config("vit-b16"))``: the float32 input image, and for a ViT one stored
float32 activation (tokens x width) per block, which the backward pass keeps at the least. Commands multiply it
by the batch and compare with the devices' memory (`runloop.check_fits_memory`) before compiling anything, so a
batch far too large is an error naming the batch rather than XLA aborting the process. A floor, never an
estimate: a real step needs several times more (attention maps, MLP activations, optimizer state).
"""

from __future__ import annotations

from .config import ViTConfig, image_hw

__all__ = ["example_memory_floor"]


def example_memory_floor(config: object) -> int:
    """Bytes one example needs at the least in a training step of ``config`` (a ViT or NFNet config)."""
    height, width = image_hw(config.image_size)
    floor = height * width * 3 * 4
    if isinstance(config, ViTConfig):
        floor += config.depth * (config.num_patches + int(config.class_token)) * config.width * 4
    return floor

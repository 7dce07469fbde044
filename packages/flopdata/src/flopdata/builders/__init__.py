"""The dataset builders: TFDS `GeneratorBasedBuilder`s that write array_record files offline, without TensorFlow.

`flopdata.build(name, ...)` is how they are meant to be run; the classes are exported for callers that need the
TFDS builder itself. `fmnist_idx` (Fashion-MNIST files, class words, pseudo-captions) and `fmnist_render` (item
and scene rendering) are the pieces of the two embedded Fashion-MNIST sets.
"""

from . import fmnist_idx, fmnist_render
from .ade20k import Ade20k
from .base import OfflineBuilder
from .coco_instances import CocoInstances
from .fmnist import FmnistObjects, FmnistScenes
from .image_folder import ImageFolder

__all__ = [
    "Ade20k",
    "CocoInstances",
    "FmnistObjects",
    "FmnistScenes",
    "ImageFolder",
    "OfflineBuilder",
    "fmnist_idx",
    "fmnist_render",
]

"""Evaluate a detector on a whole split: jitted `detect` over the eval pipeline, COCO results, COCOeval.

Batches keep one shape (the last one is padded and its padding discarded) so `detect` compiles once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import equinox as eqx
import jax
import numpy as np

from .coco_eval import coco_evaluate
from .coco_format import coco_results
from .data import DetectionData, detection_loader
from .ground_truth import category_ids, coco_ground_truth
from .inference import detect
from .model import MaskRCNN

__all__ = ["predict_coco", "evaluate_detector"]


def _pad(array: np.ndarray, size: int) -> np.ndarray:
    pad = size - array.shape[0]
    return array if pad == 0 else np.concatenate([array, np.repeat(array[-1:], pad, axis=0)])


def predict_coco(model: MaskRCNN, batches: Iterable[dict], ids: list[int]) -> tuple[list[dict], int]:
    """COCO results for every image of ``batches`` (pipeline eval batches) and the number of images whose
    detections may differ from uncapped NMS (`Detections.exact`; 0 expected)."""
    run = eqx.filter_jit(detect)
    results, inexact, size = [], 0, None
    for batch in batches:
        n = batch["image"].shape[0]
        size = size or n
        images, hw = _pad(batch["image"], size), _pad(batch["image_hw"], size)
        detections = jax.tree.map(lambda x, n=n: np.asarray(x)[:n], run(model, images, hw))
        inexact += int((~detections.exact).sum())
        results += coco_results(detections, batch["image_id"], batch["image_hw"], batch["original_hw"], ids)
    return results, inexact


def evaluate_detector(model: MaskRCNN, data: DetectionData) -> dict:
    """Box and mask AP (percent) of ``model`` on ``data``'s split, all images; ``data`` must be an eval config
    (``train=False``) with the model's image size and the encoder's mean/std. Returns `coco_evaluate`'s dict plus
    ``num_images``, ``num_detections`` and ``inexact_images``."""
    if data.train:
        raise ValueError("data.train=True: evaluation needs the deterministic eval pipeline (train=False)")
    if data.image_size != model.config.image_size:
        raise ValueError(f"data.image_size={data.image_size} but the detector expects {model.config.image_size}")
    ground_truth = coco_ground_truth(data.directory, data.split)
    ids = category_ids(data.directory)
    results, inexact = predict_coco(model, detection_loader(dataclasses.replace(data, num_epochs=1)), ids)
    metrics = coco_evaluate(ground_truth, results)
    return {
        **metrics,
        "num_images": len(ground_truth["images"]),
        "num_detections": len(results),
        "inexact_images": inexact,
    }

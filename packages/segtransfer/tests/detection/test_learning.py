"""A tiny detector overfits a fixed set of synthetic scenes: box AP50 > 0.5 on them (pycocotools)."""

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from segtransfer.detection import (
    DetectionRecipe,
    coco_evaluate,
    coco_results,
    detect,
    detection_optimizer,
    init_detection_state,
    make_detection_step,
)

COLOURS = np.asarray([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.2, 0.9]], np.float32)  # class = colour


def scenes(n, *, size=64, max_objects=4, seed=0):
    """``n`` grey-noise images with 1-3 solid rectangles (12-29 px) each, as a padded detection batch."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.3, 0.5, (n, size, size, 3)).astype(np.float32)
    boxes = np.zeros((n, max_objects, 4), np.float32)
    classes = np.full((n, max_objects), -1, np.int32)
    for i in range(n):
        for j in range(rng.integers(1, 4)):
            w, h = rng.integers(12, 30, 2)
            x, y = rng.integers(0, size - w), rng.integers(0, size - h)
            c = rng.integers(0, 3)
            images[i, y : y + h, x : x + w] = COLOURS[c]
            boxes[i, j], classes[i, j] = [x, y, x + w, y + h], c
    return {
        "image": images,
        "boxes": boxes,
        "classes": classes,
        "masks": np.full((n, max_objects, 8, 8), 255, np.uint8),  # a rectangle fills its box
        "valid": classes >= 0,
        "image_hw": np.full((n, 2), size, np.int32),
    }


def ground_truth(batch):
    gt = {"images": [], "annotations": [], "categories": [{"id": c} for c in (1, 2, 3)]}
    for i, (boxes, classes, valid) in enumerate(zip(batch["boxes"], batch["classes"], batch["valid"], strict=True)):
        gt["images"].append({"id": i, "height": 64, "width": 64})
        for (x1, y1, x2, y2), c in zip(boxes[valid].tolist(), classes[valid].tolist(), strict=True):
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i, "category_id": c + 1,
                                      "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                                      "iscrowd": 0})
    return gt


@pytest.mark.slow
def test_tiny_detector_overfits_synthetic_scenes(tiny_detector):
    steps = 150
    batch = scenes(8)
    recipe = DetectionRecipe(steps=steps, warmup_steps=10, peak_lr=1e-3, weight_decay=0.0, layer_decay=None,
                             decay_fractions=(0.8,))
    optimizer = detection_optimizer(tiny_detector, recipe)
    state = init_detection_state(tiny_detector, optimizer, key=jr.key(1))
    step = jax.jit(make_detection_step(optimizer))  # no donation: the model's arrays belong to a session fixture
    device_batch = jax.tree.map(jnp.asarray, batch)
    first = None
    for _ in range(steps):
        state, metrics = step(state, device_batch)
        first = first if first is not None else float(metrics["loss"])
    assert float(metrics["loss"]) < 0.6 * first
    detections = jax.tree.map(np.asarray, jax.jit(detect)(state.model, device_batch["image"], device_batch["image_hw"]))
    assert detections.exact.all()
    results = coco_results(detections, list(range(8)), batch["image_hw"], batch["image_hw"], [1, 2, 3])
    box = coco_evaluate(ground_truth(batch), results, iou_types=("bbox",))["bbox"]
    assert box["AP50"] > 50.0, box

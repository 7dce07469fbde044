"""Contract of the whole detector at a micro size: the pure step jit-compiles, runs without host transfers,
updates the state and reports finite metrics; `detect` gives padded, clipped, class-consistent detections."""

import dataclasses
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
import vitcore
from segtransfer.detection import (
    BATCH_FIELDS,
    DetectionRecipe,
    create_detector,
    detect,
    detection_loss,
    detection_optimizer,
    detector_config,
    init_detection_state,
    layer_decay_scales,
    make_detection_step,
)

sys.path.insert(0, str(Path(__file__).parent))
from _detection_micro import MICRO  # noqa: E402


@pytest.fixture(scope="module")
def micro():
    encoder = vitcore.create("vit-test", key=jr.key(0), num_classes=0, image_size=16)  # resampled to 32 below
    return create_detector(encoder, detector_config("tiny", num_classes=2, **MICRO), key=jr.key(1))


def _batch():
    boxes = np.zeros((2, 3, 4), np.float32)
    boxes[0, :2] = [[2, 3, 14, 20], [16, 8, 30, 28]]
    boxes[1, 0] = [5, 5, 20, 15]
    return {
        "image": jr.normal(jr.key(2), (2, 32, 32, 3)),
        "boxes": jnp.asarray(boxes),
        "classes": jnp.asarray([[0, 1, -1], [1, -1, -1]], jnp.int32),
        "masks": jnp.full((2, 3, 8, 8), 255, jnp.uint8),
        "valid": jnp.asarray([[True, True, False], [True, False, False]]),
        "image_hw": jnp.asarray([[32, 32], [24, 28]], jnp.int32),
    }


def test_step_is_pure_jitted_and_free_of_host_transfers(micro):
    assert micro.strides == (4, 8, 16) and micro.encoder.config.image_size == 32
    optimizer = detection_optimizer(micro, DetectionRecipe(steps=10, warmup_steps=2, layer_decay=0.7))
    state = init_detection_state(micro, optimizer, key=jr.key(3))
    step = jax.jit(make_detection_step(optimizer))
    batch = jax.device_put(_batch())
    with jax.transfer_guard("disallow"):  # any implicit host<->device copy inside the step would raise
        new, metrics = step(state, batch)
        again, _ = step(state, batch)
    assert int(new.step) == 1 and set(metrics) >= {"loss", "loss_rpn_cls", "loss_rpn_box", "loss_cls", "loss_box",
                                                   "loss_mask", "grad_norm", "finite"}
    assert all(np.isfinite(float(v)) for v in metrics.values()) and float(metrics["finite"]) == 1.0
    total = sum(float(metrics[k]) for k in ("loss_rpn_cls", "loss_rpn_box", "loss_cls", "loss_box", "loss_mask"))
    assert float(metrics["loss"]) == pytest.approx(total, rel=1e-6)
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state.model.box_head, new.model.box_head)
    assert all(jax.tree.leaves(changed))
    # same state, same batch: the same update (randomness is fold_in(key, step), nothing hidden)
    assert all(jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), new.model, again.model)))


def test_detect_pads_clips_and_scores(micro):
    batch = _batch()
    det = jax.tree.map(np.asarray, jax.jit(detect)(micro, batch["image"], batch["image_hw"]))
    assert det.boxes.shape == (2, 5, 4) and det.masks.shape == (2, 5, 28, 28) and det.exact.all()
    for boxes, valid, scores, classes, (h, w) in zip(
        det.boxes, det.valid, det.scores, det.classes, batch["image_hw"], strict=True
    ):
        assert valid.any() and (np.diff(scores[valid]) <= 0).all()  # best first
        assert (boxes[valid, 2] <= int(w)).all() and (boxes[valid, 3] <= int(h)).all() and (boxes[valid] >= 0).all()
        assert set(classes[valid].tolist()) <= {0, 1} and (classes[~valid] == -1).all()
    assert ((det.masks >= 0) & (det.masks <= 1)).all()


def test_loss_names_missing_batch_fields(micro):
    batch = {k: v for k, v in _batch().items() if k != "image_hw"}
    with pytest.raises(ValueError, match=r"batch lacks \['image_hw'\]"):
        detection_loss(micro, batch, key=jr.key(0))
    assert "image_hw" in BATCH_FIELDS


def test_evaluate_detector_scores_every_image_of_the_split(micro, directory):
    from segtransfer.detection import DetectionData, evaluate_detector

    data = DetectionData(directory, batch_size=2, train=False, image_size=32, max_objects=4, mask_size=8)
    metrics = evaluate_detector(micro, data)
    assert metrics["num_images"] == 3 and metrics["inexact_images"] == 0  # 2 batches: the last one padded
    assert set(metrics["bbox"]) == {"AP", "AP50", "AP75", "APs", "APm", "APl"} and set(metrics["segm"]) == set(
        metrics["bbox"]
    )
    assert 0.0 <= metrics["bbox"]["AP50"] <= 100.0 and metrics["num_detections"] > 0
    with pytest.raises(ValueError, match="data.train=True"):
        evaluate_detector(micro, DetectionData(directory, batch_size=2, image_size=32))


def test_encoder_face_head_dropped_and_drop_path_set():
    from segtransfer.detection import with_drop_path

    headed = vitcore.create("vit-test", key=jr.key(0), num_classes=3)  # built at 32: no resampling below
    detector = create_detector(headed, detector_config("tiny", num_classes=2, **MICRO), key=jr.key(1), drop_path=0.1)
    encoder = detector.encoder
    assert encoder.head is None and encoder.config.num_classes == 0 and encoder.config.drop_path == 0.1
    assert detector.strides == (4, 8, 16) and encoder.num_features == 32  # read through the backbone face
    kept = jax.tree.leaves(eqx.filter(headed.without_head(), eqx.is_array))
    assert all(np.array_equal(a, b) for a, b in zip(kept, jax.tree.leaves(eqx.filter(encoder, eqx.is_array)),
                                                    strict=True))
    assert with_drop_path(encoder, 0.1) is encoder
    with pytest.raises(ValueError, match=r"ViTConfig.drop_path=1.5; expected 0 <= drop_path < 1"):
        with_drop_path(encoder, 1.5)


def test_an_nfnet_encoder_is_read_through_the_backbone_face():
    """An NFNet (stride 32) feeds the same pyramid and heads; its stages are the layers of layer-wise decay."""
    nfnet = vitcore.create("nfnet-test", key=jr.key(0), num_classes=5)  # built at 32 px, with a head
    micro = dict(MICRO, image_size=64, roi=dataclasses.replace(MICRO["roi"], canonical_size=32.0, canonical_level=4))
    detector = create_detector(nfnet, detector_config("tiny", num_classes=2, **micro), key=jr.key(1))
    assert detector.encoder.head is None and detector.encoder.config.image_size == 64
    assert detector.strides == (16, 32, 64) and detector.grids() == ((4, 4), (2, 2), (1, 1))
    kept = jax.tree.leaves(eqx.filter(nfnet.without_head(), eqx.is_array))
    assert all(np.array_equal(a, b) for a, b in zip(kept, jax.tree.leaves(eqx.filter(detector.encoder, eqx.is_array)),
                                                    strict=True))
    scales = layer_decay_scales(detector, 0.5)  # 4 stages: stem 0.5**5, stage s 0.5**(4 - s), the rest 1
    assert set(jax.tree.leaves(scales.encoder.stem)) == {0.5**5}
    assert [set(jax.tree.leaves(stage)) for stage in scales.encoder.stages] == [{0.5**4}, {0.5**3}, {0.5**2}, {0.5}]
    assert set(jax.tree.leaves(scales.encoder.final_conv)) == {1.0} and set(jax.tree.leaves(scales.rpn_head)) == {1.0}
    # the whole training step traces with it (abstractly: shapes only, nothing compiled)
    optimizer = detection_optimizer(detector, DetectionRecipe(steps=10, warmup_steps=2, layer_decay=0.7))
    state = init_detection_state(detector, optimizer, key=jr.key(3))
    batch = {k: jnp.asarray(jax.image.resize(v, (2, 64, 64, 3), "nearest")) if k == "image" else v
             for k, v in _batch().items()}
    _, metrics = eqx.filter_eval_shape(make_detection_step(optimizer), state, batch)
    assert metrics["loss"].shape == () and metrics["loss"].dtype == jnp.float32

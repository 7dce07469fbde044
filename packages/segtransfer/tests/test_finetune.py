"""The fine-tuning step (incl. data-parallel equality), batch checks, centre-crop and sliding-window evaluation,
and a learning test."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from runloop import make_mesh, put_batch, shard_state, state_shardings
from runloop.optim.sam import per_device_sam_gradients, sam_gradients, sharded_grad_fn
from segtransfer.segmentation.finetune import (
    center_crop,
    evaluate,
    init_finetune_state,
    make_finetune_step,
    predict_logits,
    prepare_batch,
    slide_logits,
)
from segtransfer.segmentation.loss import pixel_cross_entropy
from segtransfer.segmentation.metrics import confusion_matrix, miou
from segtransfer.segmentation.optim import finetune_optimizer
from segtransfer.segmentation.run import segmentation_optimizer
from segtransfer.segmentation.segmenter import segmenter_from_scratch, segmenter_lr_scale, segmenter_weight_decay_mask
from segtransfer.segmentation.spec import SegmentationRun, SegmentationSpec

HEAD = {"head_channels": 16, "norm_groups": 4}
COLORS = np.array([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.2, 0.9]], np.float32)


def _shapes(n, rng, size=32):
    """Grey noisy canvas (class 0) with 1-2 rectangles whose class is their colour (1 red, 2 green, 3 blue)."""
    images = 0.5 + 0.1 * rng.standard_normal((n, size, size, 3))
    masks = np.zeros((n, size, size), np.int32)
    for i in range(n):
        for _ in range(rng.integers(1, 3)):
            c = rng.integers(0, 3)
            h, w = rng.integers(10, 21, 2)
            y, x = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
            images[i, y : y + h, x : x + w] = COLORS[c] + 0.05 * rng.standard_normal((h, w, 3))
            masks[i, y : y + h, x : x + w] = c + 1
    return ((images - 0.5) / 0.25).astype(np.float32), masks


def _model(patch=8, head=None):
    return segmenter_from_scratch("vit-test", 4, key=jr.key(0), patch_size=patch, head_kwargs=head or HEAD)


@pytest.mark.slow  # two compilations of the full step (one sharded over 4 fake devices): ~10-40 s on 2 shared cores
def test_step_data_parallel_equals_single_device():
    model = _model()
    opt = finetune_optimizer(1e-3, 0.05, decay_mask=segmenter_weight_decay_mask(model))
    images, masks = _shapes(4, np.random.default_rng(0))
    masks[0, :5] = 255
    batch = prepare_batch({"image": images, "mask": masks})
    step = jax.jit(make_finetune_step(opt))
    single, m1 = step(init_finetune_state(model, opt, key=jr.key(9)), {k: jnp.asarray(v) for k, v in batch.items()})
    mesh = make_mesh()  # the engine's layout: batch split over the 4 devices, state replicated
    state = init_finetune_state(model, opt, key=jr.key(9))
    sharded, m4 = step(shard_state(state, state_shardings(state, mesh)), put_batch(batch, mesh))
    np.testing.assert_allclose(float(m4["loss"]), float(m1["loss"]), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(eqx.filter(sharded.model, eqx.is_array)),
                    jax.tree.leaves(eqx.filter(single.model, eqx.is_array)), strict=True):
        # first Adam step ~ lr * sign(g): 1e-5 is 1% of a step (float32 reduction order differs across devices)
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    assert int(sharded.step) == 1 and float(m1["finite"]) == 1.0
    # the step changed the parameters
    assert not eqx.tree_equal(eqx.filter(single.model, eqx.is_array), eqx.filter(model, eqx.is_array))


def test_center_crop_and_padding():
    images = np.arange(2 * 6 * 8 * 1, dtype=np.float32).reshape(2, 6, 8, 1)
    masks = np.arange(2 * 6 * 8, dtype=np.int32).reshape(2, 6, 8) % 7
    ci, cm = center_crop(images, masks, (4, 4))
    np.testing.assert_array_equal(ci, images[:, 1:5, 2:6])
    np.testing.assert_array_equal(cm, masks[:, 1:5, 2:6])
    pi, pm = center_crop(images, masks, (8, 8))
    np.testing.assert_array_equal(pi[:, :6], images)
    assert np.all(pi[:, 6:] == 0) and np.all(pm[:, 6:] == 255)


def _slide_reference(model, image, crop, stride):
    """mmseg's slide_inference loop, written out for one image (numpy, float64 accumulation)."""
    h, w, _ = image.shape
    k = model.num_classes
    preds, count = np.zeros((h, w, k)), np.zeros((h, w, 1))
    for hi in range(max(h - crop + stride - 1, 0) // stride + 1):
        for wi in range(max(w - crop + stride - 1, 0) // stride + 1):
            y2, x2 = min(hi * stride + crop, h), min(wi * stride + crop, w)
            y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
            logits = np.asarray(predict_logits(model, jnp.asarray(image[None, y1:y2, x1:x2])))[0]
            preds[y1:y2, x1:x2] += logits
            count[y1:y2, x1:x2] += 1
    return preds / count


def test_slide_matches_mmseg_loop_and_evaluate_modes():
    model = _model()
    images, masks = _shapes(2, np.random.default_rng(1), size=48)
    images, masks = images[:, :, :40], masks[:, :, :40]  # 48 x 40: windows at rows 0, 16 and cols 0, 8
    got = slide_logits(model, images, (32, 32), (16, 16))
    for i in range(2):
        np.testing.assert_allclose(got[i], _slide_reference(model, images[i], 32, 16), rtol=1e-5, atol=1e-5)
    batch = {"image": images, "mask": masks}
    slide = evaluate(model, [batch], mode="slide", stride=16)
    np.testing.assert_array_equal(slide["confusion"], confusion_matrix(got.argmax(-1), masks, 4))
    assert slide["num_pixels"] == 2 * 48 * 40
    center = evaluate(model, [batch], mode="center_crop")
    ci, cm = center_crop(images, masks, (32, 32))
    pred = np.asarray(predict_logits(model, jnp.asarray(ci))).argmax(-1)
    expected = miou(confusion_matrix(pred, cm, 4))
    assert center["miou"] == pytest.approx(expected["miou"]) and center["num_pixels"] == 2 * 32 * 32
    with pytest.raises((ValueError, TypeError), match="mode"):
        evaluate(model, [batch], mode="tiles")


def test_prepare_batch_rejects_bad_batches():
    good = {"image": np.zeros((2, 32, 32, 3), np.float32), "mask": np.zeros((2, 32, 32), np.uint8)}
    assert prepare_batch(good)["mask"].dtype == np.int32
    with pytest.raises(ValueError, match=r"batch\['image'\] float64\[2, 32, 32, 3\]: expected float32"):
        prepare_batch({"image": good["image"].astype(np.float64), "mask": good["mask"]})
    with pytest.raises(ValueError, match=r"batch\['mask'\] uint8\[2, 32, 4\]: expected integers of shape"):
        prepare_batch({"image": good["image"], "mask": good["mask"][:, :, :4]})
    with pytest.raises(TypeError, match="expected a dict with 'image' and 'mask'"):
        prepare_batch({"image": good["image"]})


@pytest.mark.slow
def test_finetuning_beats_majority_class():
    """A tiny ViT (vit-test, patch 4) fine-tuned 300 steps on 256 coloured-shape images beats the majority-class
    predictor's mIoU on 64 held-out images by a wide margin."""
    rng = np.random.default_rng(0)
    train_x, train_y = _shapes(256, rng)
    test_x, test_y = _shapes(64, rng)
    model = _model(patch=4, head={"head_channels": 32, "norm_groups": 8})
    # constant LR (the schedule is tested on its own); head 10x: a random head must move faster than the encoder
    opt = finetune_optimizer(
        1e-4, 0.01, decay_mask=segmenter_weight_decay_mask(model), lr_scale=segmenter_lr_scale(model, head=10.0)
    )

    def batches():
        r = np.random.default_rng(1)
        while True:
            idx = r.integers(0, 256, 16)
            yield {"image": train_x[idx], "mask": train_y[idx]}

    step, state, losses = jax.jit(make_finetune_step(opt)), init_finetune_state(model, opt, key=jr.key(1)), []
    for batch, _ in zip(batches(), range(300), strict=False):
        state, metrics = step(state, {k: jnp.asarray(v) for k, v in prepare_batch(batch).items()})
        losses.append(float(metrics["loss"]))
    assert np.mean(losses[-20:]) < 0.6 * np.mean(losses[:5])
    result = evaluate(
        state.model, [{"image": test_x[i : i + 32], "mask": test_y[i : i + 32]} for i in (0, 32)], mode="whole"
    )
    majority = miou(confusion_matrix(np.zeros_like(test_y), test_y, 4))["miou"]
    print(f"fine-tuned mIoU {result['miou']:.3f} aAcc {result['aacc']:.3f}; majority-class mIoU {majority:.3f}")
    # measured: 0.89 vs 0.17 (the symmetric "fg vs bg only" plateau, which a too-high or too-short LR leaves, is
    # ~0.2-0.4); the margin asks for the colours to be told apart
    assert result["miou"] > majority + 0.4


@pytest.mark.slow  # two compilations of a SAM step (two backward passes): ~30-90 s on 2 shared cores
def test_sam_option_takes_the_gradient_at_the_perturbed_point():
    """SegmentationSpec.sam_rho puts runloop.optim.sam first: one step equals the plain optimizer applied to
    grad L(w + rho g / ||g||), the gradient the step's grad_fn gives at the perturbed weights."""
    model = _model(head={"head_channels": 8, "norm_groups": 4, "dropout": 0.0})
    spec = SegmentationSpec(batch=2, image_size=32, sam_rho=0.5)
    config = SegmentationRun(spec, dataset_dir="unused", num_classes=4, eval_split="test", steps=10, lr=1e-2,
                             wd=0.0)
    images, masks = _shapes(2, np.random.default_rng(3))
    batch = {"image": jnp.asarray(images), "mask": jnp.asarray(masks)}
    plain = segmentation_optimizer(model, dataclasses.replace(config, spec=dataclasses.replace(spec, sam_rho=None)))
    with_sam, _ = jax.jit(make_finetune_step(segmentation_optimizer(model, config)))(
        init_finetune_state(model, segmentation_optimizer(model, config), key=jr.key(1)), batch)

    params, static = eqx.partition(model, eqx.is_array)
    key = jr.fold_in(jr.key(1), 0)

    def grad_fn(p):
        return eqx.filter_grad(lambda q: pixel_cross_entropy(
            eqx.combine(q, static)(batch["image"], key=key, inference=False), batch["mask"], 255))(p)

    @jax.jit
    def reference(p):
        g = grad_fn(p)
        g_sam = sam_gradients(grad_fn, p, g, 0.5)
        return plain.update(g_sam, plain.init(p), p)[0], g, g_sam

    updates, g, g_sam = reference(params)
    assert any(not np.allclose(np.asarray(a), np.asarray(b)) for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_sam),
                                                                            strict=True))
    got = jax.tree.leaves(eqx.filter(with_sam.model, eqx.is_array))
    ref = jax.tree.leaves(eqx.filter(eqx.apply_updates(model, updates), eqx.is_array))
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)


@pytest.mark.slow  # compiles a per-slice SAM step and its reference (four backward passes): ~30-90 s on 2 cores
def test_sam_shards_option_perturbs_each_slice_of_the_batch_along_its_own_gradient():
    """SegmentationSpec.sam_shards=2 (per-device SAM): one step equals the plain optimizer applied to the mean of
    each half-batch's gradient at its own perturbed weights, each half's dropout key ``fold_in(key, k)``; with
    this rho it differs from the whole-batch perturbation."""
    model = _model(head={"head_channels": 8, "norm_groups": 4, "dropout": 0.1})
    spec = SegmentationSpec(batch=4, image_size=32, sam_rho=0.5, sam_shards=2)
    config = SegmentationRun(spec, dataset_dir="unused", num_classes=4, eval_split="test", steps=10, lr=1e-2,
                             wd=0.0)
    images, masks = _shapes(4, np.random.default_rng(4))
    batch = {"image": jnp.asarray(images), "mask": jnp.asarray(masks)}
    plain = segmentation_optimizer(model, dataclasses.replace(config, spec=dataclasses.replace(spec, sam_rho=None,
                                                                                               sam_shards=None)))
    optimizer = segmentation_optimizer(model, config)
    new, _ = jax.jit(make_finetune_step(optimizer, shards=2))(init_finetune_state(model, optimizer, key=jr.key(1)),
                                                              batch)

    params, static = eqx.partition(model, eqx.is_array)
    key = jr.fold_in(jr.key(1), 0)

    def shard_loss(p, part, k):
        logits = eqx.combine(p, static)(part["image"], key=jr.fold_in(key, k), inference=False)
        return pixel_cross_entropy(logits, part["mask"], 255)

    @jax.jit
    def reference(p):
        halves = [jax.tree.map(lambda x, i=i: x[2 * i: 2 * i + 2], batch) for i in range(2)]
        shard_grads = jax.tree.map(lambda *g: jnp.stack(g),
                                   *[eqx.filter_grad(shard_loss)(p, h, i) for i, h in enumerate(halves)])
        g_sam = per_device_sam_gradients(sharded_grad_fn(shard_loss, batch, 2), p, shard_grads, 0.5)
        whole = jax.tree.map(lambda g: jnp.mean(g, axis=0), shard_grads)
        return plain.update(g_sam, plain.init(p), p)[0], whole, g_sam

    updates, whole, g_sam = reference(params)
    assert any(not np.allclose(np.asarray(a), np.asarray(b), rtol=1e-3)
               for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(g_sam), strict=True))
    got = jax.tree.leaves(eqx.filter(new.model, eqx.is_array))
    ref = jax.tree.leaves(eqx.filter(eqx.apply_updates(model, updates), eqx.is_array))
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)

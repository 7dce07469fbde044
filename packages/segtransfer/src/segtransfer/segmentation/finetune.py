"""Fine-tuning a `Segmenter`: its training state (`runloop.TrainState`) and pure step (its pixel cross-entropy
given to `runloop.make_step_fn`: what the engine, ``runloop.train``, compiles once and runs), host-side batch
preparation, and centre-crop / sliding-window evaluation.

Batches are dicts of numpy arrays ``{"image": float32 [B, H, W, 3], "mask": int32 [B, H, W]}`` with 255 = ignore
(what `segtransfer.segmentation.data` produces). Data parallelism is the engine's: the batch is split over the devices
of its mesh along B and the state replicated; the step is one SPMD program whose loss and gradients are global-batch
means, because the loss is a mean over the whole sharded batch. Randomness (dropout, drop path) is
``fold_in(state.key, state.step)``, so a resumed run draws the same masks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Literal

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray
from runloop import TrainState, init_train_state, make_step_fn

from .loss import pixel_cross_entropy
from .metrics import confusion_matrix, miou
from .segmenter import Segmenter

__all__ = [
    "init_finetune_state",
    "make_finetune_step",
    "prepare_batch",
    "predict_logits",
    "slide_logits",
    "center_crop",
    "evaluate",
]

StepFn = Callable[[TrainState, dict[str, Array]], tuple[TrainState, dict[str, Array]]]


def init_finetune_state(model: Segmenter, optimizer: optax.GradientTransformation, *,
                        key: PRNGKeyArray) -> TrainState:
    """The state at step 0 (`runloop.TrainState` without ``extra``; the optimizer over the model's arrays;
    ``key``: the root of the per-step dropout keys)."""
    return init_train_state(model, optimizer, key=key, params_filter=eqx.is_array)


def make_finetune_step(optimizer: optax.GradientTransformation, *, ignore_index: int = 255,
                       shards: int | None = None,
                       augment: Callable[..., dict[str, Array]] | None = None) -> StepFn:
    """The pure step ``(state, batch) -> (state, metrics)``: `runloop.make_step_fn` on the mean pixel
    cross-entropy, with dropout keys ``fold_in(state.key, state.step)``. Metrics: ``loss``, ``grad_norm``
    (before clipping) and ``finite`` (1.0 when the loss and gradients are finite). It returns the new model and
    optimizer state, so XLA keeps the backward pass and the update when the step is measured. The optimizer's
    ``update`` also gets ``grad_fn`` (the same batch's loss gradient at any parameters, same dropout keys), which
    sharpness-aware minimisation needs for its second gradient (`runloop.optim.sam`); other optimizers ignore it.
    ``shards=K``: the loss is the mean of K equal slices' pixel cross-entropies, and the optimizer also gets each
    slice's gradient (`runloop.make_step_fn`'s ``grad_shards``), which per-device SAM needs.
    ``augment``: the step's augmentation hook (`segtransfer.segmentation.device_augment.DeviceAugment`), which
    turns the batch it gets into the training batch; its key is split off the step's key first, so the dropout
    keys differ from a step without it."""

    def loss_fn(model: Segmenter, extra: None, batch: dict[str, Array], *, step: Array,
                key: PRNGKeyArray) -> tuple[Array, dict]:
        logits = model(batch["image"], key=key, inference=False)
        return pixel_cross_entropy(logits, batch["mask"], ignore_index), {}

    return make_step_fn(loss_fn, optimizer, params_filter=eqx.is_array, grad_shards=shards, augment=augment)


def prepare_batch(batch: dict[str, Any]) -> dict[str, np.ndarray]:
    """Host side, before the batch goes to the devices: checks ``image``/``mask`` and casts masks to int32."""
    images, masks = _check_batch(batch, "prepare_batch")
    return {"image": images, "mask": masks}


@eqx.filter_jit
def predict_logits(model: Segmenter, images: Float[Array, "b h w c"]) -> Float[Array, "b h w k"]:
    """Inference-mode logits at the input size (the input must match the encoder's size)."""
    return model(images, inference=True)


@eqx.filter_jit
def _predict_confusion(
    model: Segmenter, images: Float[Array, "b h w c"], masks: Int[Array, "b h w"], ignore_index: int
) -> Int[Array, "k k"]:
    pred = jnp.argmax(predict_logits(model, images), axis=-1)
    return confusion_matrix(pred, masks, model.num_classes, ignore_index)


def center_crop(
    images: Float[np.ndarray, "b h w c"],
    masks: Int[np.ndarray, "b h w"],
    crop_size: tuple[int, int],
    ignore_index: int = 255,
) -> tuple[Float[np.ndarray, "b ch cw c"], Int[np.ndarray, "b ch cw"]]:
    """The central ``crop_size`` window; a side shorter than the crop is padded (image 0, mask ``ignore_index``)
    at the bottom/right, so padding never counts in the metric."""
    ch, cw = crop_size
    _, h, w, _ = images.shape
    top, left = max(h - ch, 0) // 2, max(w - cw, 0) // 2
    images = images[:, top : top + ch, left : left + cw]
    masks = masks[:, top : top + ch, left : left + cw]
    pad_h, pad_w = ch - images.shape[1], cw - images.shape[2]
    if pad_h or pad_w:
        images = np.pad(images, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))
        masks = np.pad(masks, ((0, 0), (0, pad_h), (0, pad_w)), constant_values=ignore_index)
    return images, masks


def _window_starts(size: int, crop: int, stride: int) -> list[int]:
    # mmseg slide_inference: grids = max(size - crop + stride - 1, 0) // stride + 1, last window flush with the edge.
    grids = max(size - crop + stride - 1, 0) // stride + 1
    return sorted({max(min(i * stride + crop, size) - crop, 0) for i in range(grids)})


def slide_logits(
    model: Segmenter,
    images: Float[np.ndarray, "b h w c"],
    crop_size: tuple[int, int],
    stride: tuple[int, int],
) -> Float[np.ndarray, "b h w k"]:
    """mmseg-style sliding-window inference: logits of overlapping ``crop_size`` windows (step ``stride``, last
    window flush with the border) averaged per pixel. A window larger than the image is zero-padded bottom/right to
    the crop size and its padded part discarded (the encoder needs a fixed size). One compiled call per window."""
    ch, cw = crop_size
    sh, sw = stride
    if not (0 < sh <= ch and 0 < sw <= cw):
        raise ValueError(f"stride={stride}: expected 0 < stride <= crop_size={crop_size} on each side")
    b, h, w, _ = images.shape
    total = np.zeros((b, h, w, model.num_classes), np.float32)
    count = np.zeros((1, h, w, 1), np.float32)
    for y in _window_starts(h, ch, sh):
        for x in _window_starts(w, cw, sw):
            window = images[:, y : y + ch, x : x + cw]
            wh, ww = window.shape[1:3]
            window = np.pad(window, ((0, 0), (0, ch - wh), (0, cw - ww), (0, 0)))
            logits = np.asarray(predict_logits(model, jnp.asarray(window)))
            total[:, y : y + wh, x : x + ww] += logits[:, :wh, :ww]
            count[:, y : y + wh, x : x + ww] += 1.0
    return total / count


def _check_batch(batch: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(batch, dict) or "image" not in batch or "mask" not in batch:
        raise TypeError(f"{where}: batch={type(batch).__name__}: expected a dict with 'image' and 'mask'")
    images, masks = np.asarray(batch["image"]), np.asarray(batch["mask"])
    if images.ndim != 4 or images.dtype != np.float32:
        raise ValueError(f"{where}: batch['image'] {images.dtype}{list(images.shape)}: expected float32 [B, H, W, 3]")
    if masks.shape != images.shape[:3] or not np.issubdtype(masks.dtype, np.integer):
        raise ValueError(
            f"{where}: batch['mask'] {masks.dtype}{list(masks.shape)}: expected integers of shape {images.shape[:3]}"
        )
    return images, masks.astype(np.int32)


def evaluate(
    model: Segmenter,
    batches: Iterable[dict[str, np.ndarray]],
    *,
    mode: Literal["center_crop", "slide", "whole"] = "center_crop",
    crop_size: int | tuple[int, int] | None = None,
    stride: int | tuple[int, int] | None = None,
    ignore_index: int = 255,
) -> dict[str, Any]:
    """mIoU / aAcc / per-class IoU over ``batches`` (mmseg semantics, see `segtransfer.segmentation.metrics`).

    ``mode``: "center_crop" (the study: one central ``crop_size`` window, default the encoder's size),
    "slide" (mmseg sliding window over the whole image, ``crop_size`` default the encoder's size, ``stride``
    default 2/3 of the crop as mmseg's 512/341 ADE20K setting) or "whole" (images already at the encoder's size).
    Returns `metrics.miou`'s dict plus ``"confusion"`` (int64 [k, k]) and ``"num_pixels"`` (labelled pixels).
    """
    if mode not in ("center_crop", "slide", "whole"):
        raise ValueError(f"mode={mode!r}: expected 'center_crop', 'slide' or 'whole'")
    crop = model.image_size if crop_size is None else _pair(crop_size, "crop_size")
    if mode == "slide":
        step = (
            _pair(stride, "stride") if stride is not None else (math.ceil(crop[0] * 2 / 3), math.ceil(crop[1] * 2 / 3))
        )
    k = model.num_classes
    total = np.zeros((k, k), np.int64)
    for batch in batches:
        images, masks = _check_batch(batch, "evaluate")
        if mode == "slide":
            pred = slide_logits(model, images, crop, step).argmax(-1)
            cm = confusion_matrix(pred, masks, k, ignore_index)
        else:
            if mode == "center_crop":
                images, masks = center_crop(images, masks, crop, ignore_index)
            cm = _predict_confusion(model, jnp.asarray(images), jnp.asarray(masks), ignore_index)
        total += np.asarray(cm, np.int64)  # host int64: no overflow over a split (see metrics.py)
    out = miou(total)
    out["confusion"] = total
    out["num_pixels"] = int(total.sum())
    return out


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    if isinstance(value, int):
        value = (value, value)
    if not (isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value)):
        raise ValueError(f"{name}={value!r}: expected a positive int or a (height, width) pair")
    return value

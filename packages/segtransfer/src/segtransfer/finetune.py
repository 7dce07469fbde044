"""Fine-tuning a `Segmenter`: the jitted train step, centre-crop / sliding-window evaluation, and a small fit loop.

Batches are dicts of numpy arrays ``{"image": float32 [B, H, W, 3], "mask": int32 [B, H, W]}`` with 255 = ignore
(what `segtransfer.data` produces). Data parallelism: pass a 1-axis `jax.sharding.Mesh` and the batch is split
over its devices along B (the model and optimizer state are replicated; the mesh axis must be of type
``AxisType.Auto``, so that XLA's sharding propagation partitions the step); the same jitted step then runs as one
SPMD program, and the loss/gradients are global-batch means because the loss is a mean over the whole sharded
batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from .loss import pixel_cross_entropy
from .metrics import confusion_matrix, miou
from .segmenter import Segmenter

__all__ = ["train_step", "predict_logits", "slide_logits", "center_crop", "evaluate", "fit", "FitResult"]


@eqx.filter_jit
def train_step(
    model: Segmenter,
    opt_state: PyTree,
    images: Float[Array, "b h w c"],
    masks: Int[Array, "b h w"],
    *,
    optimizer: optax.GradientTransformation,
    key: PRNGKeyArray,
    ignore_index: int = 255,
) -> tuple[Segmenter, PyTree, Float[Array, ""]]:
    """One optimizer step on the mean pixel cross-entropy; returns ``(new_model, new_opt_state, loss)``.

    ``optimizer`` is static (the same object each call reuses the compiled step), e.g. `finetune_optimizer`.
    """

    def loss_fn(m: Segmenter) -> Array:
        logits = m(images, key=key, inference=False)
        return pixel_cross_entropy(logits, masks, ignore_index)

    loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
    params = eqx.filter(model, eqx.is_array)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return eqx.apply_updates(model, updates), opt_state, loss


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
    """mIoU / aAcc / per-class IoU over ``batches`` (mmseg semantics, see `segtransfer.metrics`).

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


class FitResult(NamedTuple):
    """What `fit` returns: the trained model, the optimizer state (holds the step count) and the per-step losses."""

    model: Segmenter
    opt_state: PyTree
    losses: list[float]


def fit(
    model: Segmenter,
    batches: Iterable[dict[str, np.ndarray]],
    *,
    optimizer: optax.GradientTransformation,
    num_steps: int,
    key: PRNGKeyArray,
    opt_state: PyTree | None = None,
    start_step: int = 0,
    mesh: jax.sharding.Mesh | None = None,
    ignore_index: int = 255,
    callback: Callable[[int, float], None] | None = None,
) -> FitResult:
    """Run steps ``start_step .. num_steps - 1`` of `train_step` on batches drawn from ``batches``.

    Step ``s`` uses ``fold_in(key, s)`` so a resumed run (pass the saved ``opt_state`` and ``start_step``) draws the
    same dropout masks. ``opt_state=None`` initialises the optimizer. With ``mesh`` (one axis) each batch is split
    over its devices; B must be divisible by the device count. A non-finite loss raises with the step number;
    running out of batches early raises too. ``callback(step, loss)`` is called after every step.
    """
    if not isinstance(num_steps, int) or num_steps < 1 or not 0 <= start_step < num_steps:
        raise ValueError(f"num_steps={num_steps!r}, start_step={start_step!r}: expected 0 <= start_step < num_steps")
    if opt_state is None:
        opt_state = optimizer.init(eqx.filter(model, eqx.is_array))
    if mesh is not None:
        if len(mesh.axis_names) != 1:
            raise ValueError(f"mesh.axis_names={mesh.axis_names}: expected one (data) axis")
        if any(t != jax.sharding.AxisType.Auto for t in mesh.axis_types):
            # Explicit-sharding meshes make every reshape in the encoder demand an out_sharding.
            raise ValueError(
                f"mesh.axis_types={mesh.axis_types}: expected Auto; build it with "
                "jax.make_mesh((n,), ('data',), axis_types=(jax.sharding.AxisType.Auto,))"
            )
        replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
        model, opt_state = eqx.filter_shard((model, opt_state), replicated)
    iterator: Iterator = iter(batches)
    losses: list[float] = []
    for step in range(start_step, num_steps):
        try:
            batch = next(iterator)
        except StopIteration:
            raise ValueError(f"batches ran out at step {step} of num_steps={num_steps}") from None
        images, masks = _check_batch(batch, "fit")
        images, masks = _put(images, mesh), _put(masks, mesh)
        model, opt_state, loss = train_step(
            model, opt_state, images, masks, optimizer=optimizer, key=jr.fold_in(key, step), ignore_index=ignore_index
        )
        value = float(loss)
        if not math.isfinite(value):
            raise FloatingPointError(f"non-finite loss {value} at step {step}")
        losses.append(value)
        if callback is not None:
            callback(step, value)
    return FitResult(model, opt_state, losses)


def _put(x: np.ndarray, mesh: jax.sharding.Mesh | None) -> Array:
    if mesh is None:
        return jnp.asarray(x)
    n = mesh.devices.size
    if x.shape[0] % n:
        raise ValueError(f"batch size {x.shape[0]} is not divisible by the {n} devices of the mesh")
    spec = jax.sharding.PartitionSpec(mesh.axis_names[0])
    return jax.device_put(x, jax.sharding.NamedSharding(mesh, spec))

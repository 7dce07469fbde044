"""The losses of the six pre-training methods, as pure functions.

Every function casts its inputs to float32 first (so a bfloat16 forward pass still gets a float32 loss) and
returns a float32 scalar. The contrastive and distillation losses compute on the arrays they are given:
inside one ``jit`` over arrays sharded on the batch axis that is the *global* batch (XLA inserts the
gathers), which is what SimCLR's cross-replica negatives and DINO's all-reduced statistics need.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

__all__ = [
    "byol_loss",
    "clip_loss",
    "dino_loss",
    "mae_loss",
    "multilabel_targets",
    "nt_xent",
    "patchify",
    "softmax_xent",
]

_MASKED_LOGIT = -1e9  # SimCLR's LARGE_NUM: removes self-similarity from the softmax without producing NaNs
CLIP_MAX_LOG_SCALE = math.log(100.0)
"""open_clip clamps the learnable log logit scale to [0, ln 100]."""


def _l2_normalize(x: Float[Array, "... d"], eps: float = 1e-12) -> Float[Array, "... d"]:
    # BYOL's helpers.l2_normalize: rsqrt(max(sum x^2, eps)); also used for SimCLR and CLIP (tf/torch use the
    # same guarded form up to where eps enters, which only matters for near-zero vectors).
    sq = jnp.sum(jnp.square(x), axis=-1, keepdims=True)
    return x * jax.lax.rsqrt(jnp.maximum(sq, eps))


def _check_scalar(name: str, value: float | Float[Array, ""], *, positive: bool = True) -> None:
    # Only Python numbers can be checked here; traced schedule values are the schedule's responsibility.
    if isinstance(value, (int, float)) and positive and not value > 0:
        raise ValueError(f"{name}={value!r}: expected a positive number")


def nt_xent(
    z1: Float[Array, "b d"], z2: Float[Array, "b d"], *, temperature: float | Float[Array, ""] = 0.1
) -> Float[Array, ""]:
    """SimCLR's NT-Xent loss over the global batch of ``2b`` embeddings.

    Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations" (2020); canonical
    code google-research/simclr ``tf2/objective.py::add_contrastive_loss`` (``hidden_norm=True``). Both
    views are L2-normalised; for each of the ``2b`` anchors the positive is the other view of the same
    example and the negatives are the other ``2b - 2`` embeddings (the anchor itself is masked out), so the
    softmax runs over ``2b - 1`` candidates.

    Reduction: the mean over all ``2b`` anchors, i.e. the two directions are *averaged*. SimCLR's code sums
    them (``reduce_mean(loss_a + loss_b)``), which is exactly twice this value; the factor does not change
    Adam-type updates. With all embeddings equal the loss is ``log(2b - 1)``.

    Example::

        loss = nt_xent(proj(view1), proj(view2), temperature=0.1)
    """
    if z1.shape != z2.shape:
        raise ValueError(f"z1.shape={z1.shape} and z2.shape={z2.shape}: expected the same [b, d] shape")
    _check_scalar("temperature", temperature)
    b = z1.shape[0]
    z = _l2_normalize(jnp.concatenate([z1, z2], axis=0).astype(jnp.float32))
    logits = (z @ z.T) / jnp.asarray(temperature, jnp.float32)
    logits = jnp.where(jnp.eye(2 * b, dtype=bool), _MASKED_LOGIT, logits)
    positives = jnp.concatenate([jnp.arange(b, 2 * b), jnp.arange(b)])
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, positives[:, None], axis=-1))


def byol_loss(prediction: Float[Array, "b d"], target: Float[Array, "b d"]) -> Float[Array, ""]:
    """BYOL's regression loss for one view order, ``mean_b ||p/|p| - z/|z|||^2 = mean_b (2 - 2 cos(p, z))``.

    Grill et al., "Bootstrap your own latent" (2020); canonical code deepmind-research
    ``byol/utils/helpers.py::regression_loss`` (L2 normalisation ``x * rsqrt(max(|x|^2, 1e-12))``). A
    stop-gradient is applied to ``target`` here, so no gradient reaches the target network through this loss.

    Reduction: mean over the batch. BYOL symmetrises by *adding* the loss of the swapped view order::

        loss = byol_loss(pred(v1), target_proj(v2)) + byol_loss(pred(v2), target_proj(v1))
    """
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction.shape={prediction.shape} and target.shape={target.shape}: expected the same [b, d]"
        )
    p = _l2_normalize(prediction.astype(jnp.float32))
    z = _l2_normalize(jax.lax.stop_gradient(target).astype(jnp.float32))
    return jnp.mean(jnp.sum(jnp.square(p - z), axis=-1))


def dino_loss(
    student: Float[Array, "v b k"],
    teacher: Float[Array, "g b k"],
    center: Float[Array, " k"],
    *,
    teacher_temp: float | Float[Array, ""],
    student_temp: float | Float[Array, ""] = 0.1,
) -> Float[Array, ""]:
    """DINO's self-distillation loss.

    Caron et al., "Emerging Properties in Self-Supervised Vision Transformers" (2021); canonical code
    facebookresearch/dino ``main_dino.py::DINOLoss.forward``. ``student`` holds the head outputs of all ``v``
    crops, the ``g`` global crops first (in the same order as ``teacher``, which sees only the global crops).
    Teacher targets are ``softmax((t - center) / teacher_temp)`` under a stop-gradient; student
    log-probabilities are ``log_softmax(s / student_temp)``. For every pair (teacher crop i, student crop j)
    with ``i != j`` the cross-entropy is averaged over the batch; the result is the mean over the
    ``g * v - g`` pairs.

    The centre is *not* updated here: call ``sslmethods.ema.dino_center_update`` with the same teacher
    outputs. With uniform teacher and student distributions the loss is ``log k``.

    Example::

        loss = dino_loss(s_out, t_out, state.center, teacher_temp=teacher_temp_schedule(step))
    """
    v, b, k = student.shape
    g = teacher.shape[0]
    if teacher.shape[1:] != (b, k) or g > v:
        raise ValueError(
            f"teacher.shape={teacher.shape}: expected [g, {b}, {k}], g <= v (student.shape={student.shape})"
        )
    if g == 1 and v == 1:
        raise ValueError(f"student.shape={student.shape}: need at least two crops so that some pair differs")
    _check_scalar("teacher_temp", teacher_temp)
    _check_scalar("student_temp", student_temp)
    t = jax.lax.stop_gradient(teacher).astype(jnp.float32) - jax.lax.stop_gradient(center).astype(jnp.float32)
    q = jax.nn.softmax(t / jnp.asarray(teacher_temp, jnp.float32), axis=-1)  # [g b k]
    logp = jax.nn.log_softmax(student.astype(jnp.float32) / jnp.asarray(student_temp, jnp.float32), axis=-1)
    # cross[i, j] = mean_b CE(teacher crop i, student crop j); one einsum instead of DINO's double loop.
    cross = -jnp.einsum("gbk,vbk->gv", q, logp) / b
    different = ~jnp.eye(g, v, dtype=bool)
    return jnp.sum(jnp.where(different, cross, 0.0)) / (g * v - g)


def patchify(images: Float[Array, "b h w c"], patch_size: int) -> Float[Array, "b n d"]:
    """Splits NHWC images into row-major non-overlapping patches, each flattened as (row, col, channel).

    This is MAE's ``patchify`` (``nchpwq -> nhwpqc``) for channels-last input: ``n = (h/p)(w/p)``,
    ``d = p*p*c``. It defines the target layout ``mae_loss`` expects from the decoder.
    """
    b, h, w, c = images.shape
    if patch_size <= 0 or h % patch_size or w % patch_size:
        raise ValueError(f"patch_size={patch_size}: expected a positive divisor of the image size {h}x{w}")
    p = patch_size
    x = images.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // p) * (w // p), p * p * c)


def mae_loss(
    pred: Float[Array, "b n d"],
    target: Float[Array, "b n d"],
    mask: Float[Array, "b n"] | Int[Array, "b n"] | Bool[Array, "b n"],
    *,
    norm_pix_loss: bool = True,
    eps: float = 1e-6,
) -> Float[Array, ""]:
    """MAE's reconstruction loss: mean squared error on the masked (removed) patches only.

    He et al., "Masked Autoencoders Are Scalable Vision Learners" (2021); canonical code facebookresearch/mae
    ``models_mae.py::MaskedAutoencoderViT.forward_loss``. ``target`` is ``patchify(images, p)``; ``mask`` is 1
    (or True) where a patch was removed and 0 where it was visible. With ``norm_pix_loss`` (the study's
    setting) each target patch is normalised by its own mean and *unbiased* variance: ``(x - mean) /
    sqrt(var + eps)``.

    Reduction: per-patch mean over ``d``, then ``sum(loss * mask) / sum(mask)``; predictions at visible
    patches get no gradient. A batch without any masked patch returns 0 instead of MAE's NaN.
    """
    if pred.shape != target.shape:
        raise ValueError(
            f"pred.shape={pred.shape} and target.shape={target.shape}: expected the same [b, n, d]"
        )
    if mask.shape != pred.shape[:2]:
        raise ValueError(f"mask.shape={mask.shape}: expected {pred.shape[:2]} (one entry per patch)")
    if norm_pix_loss and target.shape[-1] < 2:
        raise ValueError(f"target.shape={target.shape}: norm_pix_loss needs at least 2 values per patch")
    target = jax.lax.stop_gradient(target).astype(jnp.float32)
    if norm_pix_loss:
        mean = jnp.mean(target, axis=-1, keepdims=True)
        var = jnp.var(target, axis=-1, keepdims=True, ddof=1)  # torch.Tensor.var is unbiased by default
        target = (target - mean) * jax.lax.rsqrt(var + eps)
    m = mask.astype(jnp.float32)
    per_patch = jnp.mean(jnp.square(pred.astype(jnp.float32) - target), axis=-1)
    # where() rather than a plain product so a non-finite prediction at a visible patch cannot leak in.
    return jnp.sum(jnp.where(m > 0, per_patch * m, 0.0)) / jnp.maximum(jnp.sum(m), 1.0)


def clip_loss(
    image_emb: Float[Array, "b d"], text_emb: Float[Array, "b d"], log_logit_scale: Float[Array, ""] | float
) -> Float[Array, ""]:
    """CLIP's symmetric InfoNCE loss over the global batch.

    Radford et al., "Learning Transferable Visual Models From Natural Language Supervision" (2021); canonical
    code mlfoundations/open_clip ``src/open_clip/loss.py::ClipLoss`` (non-local loss: every image against
    every text of the global batch). Both embeddings are L2-normalised here (open_clip's model does it
    before the loss). ``log_logit_scale`` is the learnable parameter (initialise it at ``log(1 / 0.07)``);
    the logits use ``exp(clip(log_logit_scale, 0, ln 100))``. open_clip clamps the *parameter* after each
    optimizer step; here the clamp is in the forward pass (no gradient beyond the bounds), so also clamp the
    stored parameter after the update if it must not drift.

    Reduction: ``(CE(image -> text) + CE(text -> image)) / 2``, each the mean over the batch.
    """
    if image_emb.shape != text_emb.shape:
        raise ValueError(
            f"image_emb.shape={image_emb.shape} and text_emb.shape={text_emb.shape}: expected the same [b, d]"
        )
    img = _l2_normalize(image_emb.astype(jnp.float32))
    txt = _l2_normalize(text_emb.astype(jnp.float32))
    scale = jnp.exp(jnp.clip(jnp.asarray(log_logit_scale, jnp.float32), 0.0, CLIP_MAX_LOG_SCALE))
    logits = scale * (img @ txt.T)  # [b_img, b_txt]
    diag_i = jnp.diagonal(jax.nn.log_softmax(logits, axis=1))
    diag_t = jnp.diagonal(jax.nn.log_softmax(logits, axis=0))
    return -(jnp.mean(diag_i) + jnp.mean(diag_t)) / 2


def softmax_xent(
    logits: Float[Array, "b k"], labels: Int[Array, " b"] | Float[Array, "b k"]
) -> Float[Array, ""]:
    """Softmax cross-entropy, mean over the batch.

    ``labels`` is either integer class ids ``[b]`` or a target distribution ``[b, k]`` (e.g. from
    ``multilabel_targets``); the loss is ``-sum_k y_k log_softmax(logits)_k`` (deepmind-research BYOL
    ``helpers.softmax_cross_entropy``, big_vision ``softmax_xent``).
    """
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if labels.shape != logits.shape[:1]:
            raise ValueError(f"labels.shape={labels.shape}: expected [{logits.shape[0]}] class ids")
        return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))
    if labels.shape != logits.shape:
        raise ValueError(f"labels.shape={labels.shape}: expected {logits.shape} (a distribution per example)")
    return -jnp.mean(jnp.sum(labels.astype(jnp.float32) * logp, axis=-1))


def multilabel_targets(
    labels: Int[Array, "b m"], num_classes: int, *, smoothing: float = 0.1
) -> Float[Array, "b k"]:
    """Soft targets for multi-label images: mean of the one-hots of the valid labels, then label smoothing.

    ``labels`` holds up to ``m`` class ids per image (the study keeps at most 8), padded with ``-1`` (any
    negative id is padding). The target is ``(1 - smoothing) * mean_onehot + smoothing / num_classes`` (optax
    ``smooth_labels``). An image without any valid label gets the uniform distribution.
    """
    if num_classes <= 0:
        raise ValueError(f"num_classes={num_classes}: expected a positive number of classes")
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing={smoothing}: expected a value in [0, 1)")
    valid = labels >= 0
    onehot = jax.nn.one_hot(jnp.where(valid, labels, 0), num_classes, dtype=jnp.float32)
    onehot = jnp.where(valid[..., None], onehot, 0.0)
    count = jnp.sum(valid, axis=-1, keepdims=True).astype(jnp.float32)
    mean = jnp.where(count > 0, jnp.sum(onehot, axis=1) / jnp.maximum(count, 1.0), 1.0 / num_classes)
    return (1.0 - smoothing) * mean + smoothing / num_classes

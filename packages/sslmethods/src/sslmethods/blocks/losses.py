"""The losses of the six pre-training methods and ready-made building blocks for new ones, as pure functions.

The study's losses: ``nt_xent`` (SimCLR), ``byol_loss``, ``dino_loss``, ``mae_loss``, ``clip_loss``,
``softmax_xent`` with ``multilabel_targets`` (supervised). Building blocks for other joint-embedding methods:
``negative_cosine`` (SimSiam), ``vicreg_loss`` (VICReg), ``barlow_twins_loss`` (Barlow Twins), and the
``cosine_similarity`` they and the methods' metrics use. Every function casts its inputs to float32 first (so a
bfloat16 forward pass still gets a float32 loss) and returns a float32 scalar. The contrastive, distillation and
batch-statistics losses compute on the arrays they are given: inside one ``jit`` over arrays sharded on the batch
axis that is the *global* batch (XLA inserts the gathers), which is what SimCLR's cross-replica negatives, DINO's
all-reduced statistics and VICReg's / Barlow Twins' gathered embeddings need.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int
from vitcore import patchify  # the one home of the MAE patch layout; re-exported here for mae_loss users

__all__ = [
    "barlow_twins_loss",
    "byol_loss",
    "clip_loss",
    "cosine_similarity",
    "dino_loss",
    "mae_loss",
    "multilabel_targets",
    "negative_cosine",
    "nt_xent",
    "patchify",
    "softmax_xent",
    "vicreg_loss",
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


def cosine_similarity(
    a: Float[Array, "b d"], b: Float[Array, "b d"], *, eps: float = 1e-8
) -> Float[Array, " b"]:
    """Row-wise cosine similarity in float32: ``a.b / max(|a| |b|, eps)`` (torch ``nn.CosineSimilarity``,
    ``eps=1e-8``). Also a logged metric of the methods: how well two views agree."""
    if a.shape != b.shape:
        raise ValueError(f"a.shape={a.shape} and b.shape={b.shape}: expected the same [b, d] shape")
    a, b = a.astype(jnp.float32), b.astype(jnp.float32)
    norms = jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1)
    return jnp.sum(a * b, axis=-1) / jnp.maximum(norms, eps)


def negative_cosine(prediction: Float[Array, "b d"], target: Float[Array, "b d"]) -> Float[Array, ""]:
    """SimSiam's loss for one view order: ``-mean_b cos(p, stop_gradient(z))``, in [-1, 1].

    Chen & He, "Exploring Simple Siamese Representation Learning" (CVPR 2021), eq. 1-2; canonical code
    facebookresearch/simsiam ``main_simsiam.py`` (``nn.CosineSimilarity(dim=1)``, eps 1e-8, ``z.detach()``).
    The stop-gradient on ``target`` is applied here. SimSiam symmetrises by averaging the two view orders::

        loss = 0.5 * (negative_cosine(pred(z1), z2) + negative_cosine(pred(z2), z1))
    """
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction.shape={prediction.shape} and target.shape={target.shape}: expected the same [b, d]"
        )
    return -jnp.mean(cosine_similarity(prediction, jax.lax.stop_gradient(target)))


def _check_batch(name: str, x: Float[Array, "b d"]) -> None:
    if x.shape[0] < 2:
        raise ValueError(f"{name}.shape={x.shape}: batch statistics need a batch of at least 2")


def vicreg_loss(
    z1: Float[Array, "b d"],
    z2: Float[Array, "b d"],
    *,
    sim_coeff: float = 25.0,
    std_coeff: float = 25.0,
    cov_coeff: float = 1.0,
    eps: float = 1e-4,
) -> Float[Array, ""]:
    """VICReg: invariance + variance + covariance terms on the embeddings of two views.

    Bardes, Ponce & LeCun, "VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised Learning"
    (ICLR 2022), eq. 1-6; canonical code facebookresearch/vicreg ``main_vicreg.py::VICReg.forward``, whose
    conventions are followed: invariance = the mean squared error over all ``b * d`` entries; variance =
    ``mean_j relu(1 - sqrt(var_j + eps))`` with the *unbiased* batch variance, averaged over the two branches;
    covariance = the sum of the squared off-diagonal entries of each branch's covariance (normalised by
    ``b - 1``) divided by ``d``, *summed* over the branches; coefficients ``sim_coeff`` 25, ``std_coeff`` 25,
    ``cov_coeff`` 1 (the code's defaults). The batch statistics run over the arrays given: the global batch
    inside one ``jit`` over sharded arrays, as the canonical code's ``FullGatherLayer``.

    Example::

        loss = vicreg_loss(expander(backbone(view1)), expander(backbone(view2)))
    """
    if z1.shape != z2.shape:
        raise ValueError(f"z1.shape={z1.shape} and z2.shape={z2.shape}: expected the same [b, d] shape")
    _check_batch("z1", z1)
    b, d = z1.shape
    x, y = z1.astype(jnp.float32), z2.astype(jnp.float32)
    invariance = jnp.mean(jnp.square(x - y))
    x = x - jnp.mean(x, axis=0)
    y = y - jnp.mean(y, axis=0)

    def variance(z: Float[Array, "b d"]) -> Float[Array, ""]:
        std = jnp.sqrt(jnp.sum(jnp.square(z), axis=0) / (b - 1) + eps)
        return jnp.mean(jax.nn.relu(1.0 - std))

    def covariance(z: Float[Array, "b d"]) -> Float[Array, ""]:
        cov = (z.T @ z) / (b - 1)
        off_diagonal = jnp.where(jnp.eye(d, dtype=bool), 0.0, cov)
        return jnp.sum(jnp.square(off_diagonal)) / d

    std_term = (variance(x) + variance(y)) / 2
    cov_term = covariance(x) + covariance(y)
    return sim_coeff * invariance + std_coeff * std_term + cov_coeff * cov_term


def barlow_twins_loss(
    z1: Float[Array, "b d"], z2: Float[Array, "b d"], *, lambd: float = 5e-3, eps: float = 1e-5
) -> Float[Array, ""]:
    """Barlow Twins: drive the cross-correlation of the two views' embeddings to the identity.

    Zbontar, Jing, Misra, LeCun & Deny, "Barlow Twins: Self-Supervised Learning via Redundancy Reduction" (ICML
    2021), eq. 1-2: ``sum_i (1 - C_ii)^2 + lambd * sum_{i != j} C_ij^2``. The canonical code
    (facebookresearch/barlowtwins ``main.py::BarlowTwins.forward``) is followed for C: each embedding is batch-
    normalised without affine parameters (``nn.BatchNorm1d(affine=False)`` in training mode: batch mean,
    *biased* variance, eps 1e-5; synced over GPUs, i.e. the global batch here) and ``C = bn(z1).T @ bn(z2) / b``.
    ``lambd`` is the paper's 5e-3 (the code's default is 0.0051); no extra loss scale (later code dropped it).

    Example::

        loss = barlow_twins_loss(projector(backbone(view1)), projector(backbone(view2)))
    """
    if z1.shape != z2.shape:
        raise ValueError(f"z1.shape={z1.shape} and z2.shape={z2.shape}: expected the same [b, d] shape")
    _check_batch("z1", z1)
    b, d = z1.shape

    def batch_norm(z: Float[Array, "b d"]) -> Float[Array, "b d"]:
        z = z.astype(jnp.float32)
        mean = jnp.mean(z, axis=0)
        var = jnp.mean(jnp.square(z - mean), axis=0)
        return (z - mean) * jax.lax.rsqrt(var + eps)

    c = batch_norm(z1).T @ batch_norm(z2) / b
    diagonal = jnp.eye(d, dtype=bool)
    on_diag = jnp.sum(jnp.where(diagonal, jnp.square(c - 1.0), 0.0))
    off_diag = jnp.sum(jnp.where(diagonal, 0.0, jnp.square(c)))
    return on_diag + lambd * off_diag


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

    The centre is *not* updated here: call ``sslmethods.blocks.ema.dino_center_update`` with the same teacher
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
    optimizer step, which ``CLIP.post_update`` does; the clamp here only guards callers of this function that
    do not (beyond the bounds its gradient is 0, so a parameter left outside would never come back).

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

"""DINO (Caron et al. 2021): self-distillation from an EMA teacher with multi-crop views and a centred teacher.

Canonical code: facebookresearch/dino ``main_dino.py`` (``DINOLoss``, ``DataAugmentationDINO``, training loop,
``cancel_gradients_last_layer``) and ``vision_transformer.py`` (``DINOHead``, ``interpolate_pos_encoding``).
Trainable: the student, ``EncoderWithHead(backbone, DINOHead)``. State: ``{"teacher": an EMA copy of the
student, "center": [K]}``.

Local crops have a lower resolution than the global ones. The backbone runs once per resolution group: the
global crops through the model as it is, the local crops with the position embedding resampled for them
(``EncoderWithHead`` calls ``vitcore.interpolate_pos_embed``, bicubic, inside the traced forward pass, so
gradients reach the full-size table), as DINO's ``interpolate_pos_encoding`` does. Two differences from DINO:
``jax.image.resize`` antialiases when shrinking (torch's ``F.interpolate`` does not), and the default local crop
size is rounded to a multiple of the patch size (``augment.dino_local_size``: 96 at 224 with patch 16, as DINO;
16 at 32 with patch 8)::

    method = DINO(backbone=vitcore.get_config("vit-b16"), total_steps=250_000)
    trainable, state = method.init(key=key)
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import vitcore
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..blocks.augment import dino_local_size, dino_views, make_views
from ..blocks.backbones import BackboneConfig, forward_macs, train_macs  # noqa: F401 (the generated __init__'s annotation, for pdoc)
from ..blocks.ema import dino_center_update, ema_update
from ..blocks.encoder_with_head import EncoderWithHead
from ..blocks.heads import DINOHead
from ..blocks.losses import dino_loss
from ..blocks.schedules import dino_teacher_momentum, dino_teacher_temperature
from .method import AbstractMethod, Batch

__all__ = ["DINO"]

NUM_GLOBAL_CROPS = 2
_I1K_STEPS_PER_EPOCH = 1252  # ceil(1,281,167 / 1024): one ImageNet-1K epoch at the study's DINO batch 1024


def _at_most_the_run(steps: int, total_steps: int | Int[Array, ""]) -> int | Int[Array, ""]:
    """``min(steps, total_steps)``; an int32 array when the run length is (data of the compiled step)."""
    return min(steps, total_steps) if isinstance(total_steps, int) else jnp.minimum(steps, total_steps)


class DINO(AbstractMethod):
    """DINO on a ``vitcore`` backbone.

    Multi-crop: 2 global crops at the image size + ``num_local_crops`` (10) at ``local_size`` (default
    ``augment.dino_local_size(image_size, patch_size)``). Head: ``DINOHead(width, out_dim)`` with ``hidden_dim``
    2048, ``bottleneck_dim`` 256.
    Temperatures: student ``student_temp`` 0.1; teacher linear warm-up ``teacher_temp_start`` 0.04 ->
    ``teacher_temp_end`` 0.07 over ``teacher_temp_warmup_steps`` (default: 30 ImageNet epochs at batch 1024, DINO's
    ``warmup_teacher_temp_epochs=30``, at most the run). Centre EMA ``center_momentum`` 0.9 over the global batch
    of teacher outputs. Teacher EMA: cosine ``momentum_start`` 0.996 -> 1 over ``total_steps``. The head's last
    layer gets zero gradients for the first ``freeze_last_layer_steps`` (default: one ImageNet epoch at 1024, at
    most the run). The student's backbone has stochastic depth ``drop_path`` (0.1, DINO's ``--drop_path_rate``
    default; the last block's rate, linear from 0 as DINO's ``dpr``); the teacher runs deterministically (no drop
    path), as DINO builds it. Weight decay (`weight_decay_mask`): DINO's ``get_params_groups``.
    """

    name: ClassVar[str] = "dino"
    vit_only: ClassVar[str | None] = "its local crops resample the position embedding of a ViT"
    num_local_crops: int = eqx.field(static=True, default=10)
    local_size: int | None = eqx.field(static=True, default=None)
    out_dim: int = eqx.field(static=True, default=65_536)
    hidden_dim: int = eqx.field(static=True, default=2048)
    bottleneck_dim: int = eqx.field(static=True, default=256)
    student_temp: float = eqx.field(static=True, default=0.1)
    teacher_temp_start: float = eqx.field(static=True, default=0.04)
    teacher_temp_end: float = eqx.field(static=True, default=0.07)
    teacher_temp_warmup_steps: int | None = eqx.field(static=True, default=None)
    center_momentum: float = eqx.field(static=True, default=0.9)
    momentum_start: float = eqx.field(static=True, default=0.996)
    freeze_last_layer_steps: int | None = eqx.field(static=True, default=None)
    drop_path: float = eqx.field(static=True, default=0.1)

    def __check_init__(self):
        size = self.image_size
        if isinstance(self.num_local_crops, bool) or not isinstance(self.num_local_crops, int) or \
                self.num_local_crops < 0:
            raise ValueError(f"num_local_crops={self.num_local_crops!r}: expected an int >= 0")
        local = self.crop_size_local
        if not 0 < local <= size or local % self.backbone.patch_size:
            raise ValueError(
                f"local_size={self.local_size!r}: expected a multiple of the patch size "
                f"{self.backbone.patch_size} in (0, {size}]"
            )
        for name in ("student_temp", "teacher_temp_start", "teacher_temp_end"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)!r}: expected a positive temperature")
        if not 0.0 <= self.center_momentum <= 1.0:
            raise ValueError(f"center_momentum={self.center_momentum!r}: expected a rate in [0, 1]")
        for name in ("teacher_temp_warmup_steps", "freeze_last_layer_steps"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name}={value!r}: expected None (the default) or an int >= 0")
        dino_teacher_momentum(self.total_steps, base=self.momentum_start)  # validates the rate
        self.encoder_config  # noqa: B018  (validates drop_path through ViTConfig)

    @property
    def encoder_config(self) -> vitcore.ViTConfig:
        """The study's backbone for DINO, the standard ViT (learned position embedding): ``backbone`` without a
        classifier head, with the student's ``drop_path``."""
        return dataclasses.replace(self.backbone, num_classes=0, drop_path=self.drop_path)

    @property
    def crop_size_local(self) -> int:
        """The local crops' size: ``local_size`` or DINO's 96/224 of the image size in whole patches."""
        if self.local_size is not None:
            return self.local_size
        return dino_local_size(self.image_size, self.backbone.patch_size)

    def analytic_macs(self, batch_size: int) -> float:
        """Forward + backward of the student on the 2 global and ``num_local_crops`` local crops (at their
        size), and a forward of the teacher on the 2 global crops (the head is left out)."""
        cfg = self.encoder_config
        local = train_macs(cfg, image_size=self.crop_size_local) if self.num_local_crops else 0
        per_image = NUM_GLOBAL_CROPS * (train_macs(cfg) + forward_macs(cfg)) + self.num_local_crops * local
        return float(batch_size * per_image)

    def teacher_temp(self, step: Int[Array, ""] | int) -> Float[Array, ""]:
        warmup = self.teacher_temp_warmup_steps
        warmup = _at_most_the_run(30 * _I1K_STEPS_PER_EPOCH, self.total_steps) if warmup is None else warmup
        return dino_teacher_temperature(warmup, start=self.teacher_temp_start, end=self.teacher_temp_end)(step)

    def teacher_momentum(self, step: Int[Array, ""] | int) -> Float[Array, ""]:
        return dino_teacher_momentum(self.total_steps, base=self.momentum_start, final=1.0)(step)

    @property
    def frozen_last_layer_steps(self) -> int | Int[Array, ""]:
        steps = self.freeze_last_layer_steps
        return _at_most_the_run(_I1K_STEPS_PER_EPOCH, self.total_steps) if steps is None else steps

    def init(self, *, key: PRNGKeyArray) -> tuple[EncoderWithHead, dict[str, Any]]:
        k_backbone, k_head = jax.random.split(key)
        backbone = vitcore.ViT(self.encoder_config, key=k_backbone)
        head = DINOHead(self.backbone.width, self.out_dim, key=k_head, hidden_dim=self.hidden_dim,
                        bottleneck_dim=self.bottleneck_dim)
        student = EncoderWithHead(backbone, head)
        # The teacher starts as the student (DINO: teacher.load_state_dict(student.state_dict())); the drop-path
        # rate lives in the static config and is never used by the teacher, which runs with inference=True.
        return student, {"teacher": student, "center": jnp.zeros((self.out_dim,), jnp.float32)}

    def views(self, batch: Batch, *, step: Int[Array, ""], key: PRNGKeyArray) -> Batch:
        del step
        recipe = dino_views(self.image_size, n_local=self.num_local_crops, local_size=self.crop_size_local)
        crops = make_views(batch["image"], recipe, key=key)
        out = {"global": jnp.stack(crops[:NUM_GLOBAL_CROPS])}
        if self.num_local_crops:
            out["local"] = jnp.stack(crops[NUM_GLOBAL_CROPS:])
        return out

    def loss(
        self, trainable: EncoderWithHead, state: dict[str, Any], views: Batch, *, step: Int[Array, ""],
        key: PRNGKeyArray,
    ) -> tuple[Float[Array, ""], dict[str, Any]]:
        g, b = views["global"].shape[:2]
        if g != NUM_GLOBAL_CROPS:
            raise ValueError(f"views['global'].shape={views['global'].shape}: expected [2, b, h, w, c]")
        k_global, k_local = jax.random.split(key)
        global_images = views["global"].reshape(g * b, *views["global"].shape[2:])
        student = [trainable(global_images, key=k_global).reshape(g, b, -1)]
        if "local" in views:
            n = views["local"].shape[0]
            local_images = views["local"].reshape(n * b, *views["local"].shape[2:])
            student.append(trainable(local_images, key=k_local).reshape(n, b, -1))
        student_out = jnp.concatenate(student)
        # The teacher sees only the global crops.
        teacher = jax.lax.stop_gradient(state["teacher"])
        teacher_out = jax.lax.stop_gradient(teacher(global_images, inference=True)).reshape(g, b, -1)
        temp = self.teacher_temp(step)
        loss = dino_loss(student_out, teacher_out, state["center"], teacher_temp=temp,
                         student_temp=self.student_temp)
        # Only the global-batch mean leaves the loss ([K], not the [2, b, K] outputs): all the centre needs.
        teacher_mean = jnp.mean(teacher_out.reshape(g * b, -1).astype(jnp.float32), axis=0)
        metrics = {"teacher_temp": temp, "teacher_momentum": self.teacher_momentum(step)}
        return loss, {"metrics": metrics, "teacher_mean": teacher_mean}

    def update_state(
        self, trainable: EncoderWithHead, state: dict[str, Any], aux: dict[str, Any], *, step: Int[Array, ""]
    ) -> dict[str, Any]:
        teacher = ema_update(state["teacher"], trainable, self.teacher_momentum(step))
        center = dino_center_update(state["center"], aux["teacher_mean"][None], momentum=self.center_momentum)
        return {"teacher": teacher, "center": center}

    def adjust_grads(
        self, trainable: EncoderWithHead, grads: EncoderWithHead, *, step: Int[Array, ""]
    ) -> EncoderWithHead:
        """Zeroes the head's last-layer gradient while ``step < freeze_last_layer_steps`` (DINO's
        ``cancel_gradients_last_layer``; DINO drops the gradient, so AdamW's decay of ``v`` still applies here,
        which only changes ``|v|``, not the weight-normed output)."""
        del trainable
        frozen = jnp.asarray(step) < self.frozen_last_layer_steps
        return eqx.tree_at(
            lambda g: g.head.last_layer.weight, grads,
            jnp.where(frozen, jnp.zeros_like(grads.head.last_layer.weight), grads.head.last_layer.weight),
        )

    def weight_decay_mask(self, trainable: EncoderWithHead) -> Any:
        """DINO's ``utils.get_params_groups``: no decay for biases and 1-D parameters (norms), decay for the rest,
        so unlike the backbones' default rule the class token and the learned position embedding decay too
        (their torch shapes are [1, 1, d] and [1, n, d]). The head's matmuls decay, its biases do not."""
        mask = super().weight_decay_mask(trainable)
        tokens = [lambda m: m.backbone.cls_token, lambda m: m.backbone.pos_embed]
        for where in tokens:
            if where(trainable) is not None:  # absent without a class token / with sin-cos position embeddings
                mask = eqx.tree_at(where, mask, True)
        return mask

    def encoder(self, trainable: EncoderWithHead) -> vitcore.AbstractBackbone:
        return trainable.backbone

    def final_layers(self, trainable: EncoderWithHead) -> tuple[eqx.Module, ...]:
        """The head's weight-normed last layer."""
        return (trainable.head.last_layer,)

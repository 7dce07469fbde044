"""Supervised pre-training: a backbone with a classifier head and softmax cross-entropy on (multi-)label targets.

The study's recipe (Koppula et al. 2022, A.3): crop-resize + flip augmentation, drop path 0.1, init std 0.02
and head bias -10; multi-label data (JFT-like, at most 8 labels) trains on the mean of the one-hots with label
smoothing 0.1 under a softmax cross-entropy (``losses.multilabel_targets`` + ``losses.softmax_xent``).
Single-label data goes down the same path with one label per image. The -10 head bias is kept for fidelity but is
inert here: softmax is shift-invariant, so a bias equal on every class changes no loss and no gradient (tested).
It matters for the sigmoid-style heads of big_vision's JFT recipes (an initial per-class probability of ~4.5e-5),
which the study does not use: it names softmax cross-entropy. The backbone is the standard ViT, or any other
vitcore family (an NFNet: Brock et al. 2021's supervised recipe, with ``OptimConfig.agc``)::

    method = Supervised(backbone=vitcore.get_config("vit-b16"), total_steps=250_000, num_classes=1000)
    vit, state = method.init(key=key)           # state is {} (nothing non-trainable)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import vitcore
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ..blocks.augment import make_views, supervised_views
from ..blocks.backbones import BackboneConfig, classifier_config, train_macs
from ..blocks.losses import multilabel_targets, softmax_xent
from .method import AbstractMethod, Batch

__all__ = ["Supervised", "batch_labels"]


def batch_labels(batch: Batch) -> Int[Array, "b m"]:
    """The label lists of a batch as [b, m] int32 (-1 padded): ``labels`` if present, else ``label`` (m=1)."""
    if "labels" in batch:
        labels = batch["labels"]
    elif "label" in batch:
        labels = batch["label"][:, None]
    else:
        raise ValueError(
            f"batch has keys {sorted(batch)}; supervised training needs 'label' [b] or 'labels' [b, m]"
        )
    if not jnp.issubdtype(labels.dtype, jnp.integer) or labels.ndim != 2:
        raise TypeError(f"labels have dtype {labels.dtype} and shape {labels.shape}; expected integer [b, m]")
    return labels.astype(jnp.int32)


class Supervised(AbstractMethod):
    """Softmax classification on (multi-)labels; trainable = the backbone (``vitcore.build``: a ViT, an NFNet)
    with a ``num_classes`` head.

    ``total_steps`` is taken for the uniform constructor; this method has no step schedule. ``num_classes`` comes
    from the dataset (``dataset_fields``) when built through ``recipes``. ``backbone``'s ``num_classes``,
    ``drop_path`` and ``head_bias_init`` are replaced by this method's values where the family has them
    (`backbones.classifier_config`: an NFNet has no head bias field, its head bias starts at 0, which softmax
    does not tell from -10); weights use the family's init (a ViT's truncated normal, std 0.02). ``max_labels``
    caps the label list used per image.
    ``aux["metrics"]["accuracy"]``: fraction of images whose top-1 class is one of their labels.
    """

    name: ClassVar[str] = "supervised"
    num_classes: int = eqx.field(static=True, default=1000)
    drop_path: float = eqx.field(static=True, default=0.1)
    label_smoothing: float = eqx.field(static=True, default=0.1)
    max_labels: int = eqx.field(static=True, default=8)
    head_bias_init: float = eqx.field(static=True, default=-10.0)

    def __check_init__(self) -> None:
        if type(self.num_classes) is not int or self.num_classes < 1:
            raise ValueError(f"num_classes={self.num_classes!r}; expected a positive int (dataset classes)")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing={self.label_smoothing!r}; expected 0 <= label_smoothing < 1")
        if self.max_labels < 1:
            raise ValueError(f"max_labels={self.max_labels!r}; expected a positive int")
        self.config  # noqa: B018  (validates drop_path through the backbone's config)

    @property
    def config(self) -> BackboneConfig:
        """The classifier's config: ``backbone`` with this method's head and drop path."""
        return classifier_config(self.backbone, num_classes=self.num_classes, drop_path=self.drop_path,
                                 head_bias_init=self.head_bias_init)

    @classmethod
    def dataset_fields(cls, dataset_dir: str | Path) -> dict[str, Any]:
        """``num_classes``: the number of label names of the dataset."""
        from flopdata import label_names  # here: a method is usable without the dataset readers installed

        return {"num_classes": len(label_names(dataset_dir))}

    def batch_spec(self, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
        """The image and its label list ``labels`` [b, max_labels] int32, -1 padded."""
        labels = jax.ShapeDtypeStruct((batch_size, self.max_labels), jnp.int32)
        return super().batch_spec(batch_size) | {"labels": labels}

    def prepare_batch(self, batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """``image`` and ``labels`` [b, max_labels] int32 from the pipeline's ``labels`` [b, m] (multi-label
        sets) or ``label`` [b]: cut to ``max_labels`` or padded with -1."""
        if "labels" in batch:
            labels = np.asarray(batch["labels"])
        elif "label" in batch:
            labels = np.asarray(batch["label"])[:, None]
        else:
            raise ValueError(
                f"batch has keys {sorted(batch)}; supervised training needs 'label' [b] or 'labels' [b, m]"
            )
        b, m = labels.shape
        padded = np.full((b, self.max_labels), -1, np.int32)
        padded[:, : min(m, self.max_labels)] = labels[:, : self.max_labels]
        return super().prepare_batch({"image": batch["image"], "labels": padded})

    def analytic_macs(self, batch_size: int) -> float:
        """Forward + backward of the classifier on every image."""
        return float(batch_size * train_macs(self.backbone, num_classes=self.num_classes))

    def init(self, *, key: PRNGKeyArray) -> tuple[vitcore.AbstractBackbone, dict[str, Any]]:
        return vitcore.build(self.config, key=key), {}

    def views(self, batch: Batch, *, step: Int[Array, ""], key: PRNGKeyArray) -> Batch:
        del step
        (image,) = make_views(batch["image"], supervised_views(self.image_size), key=key)
        return {"image": image, "labels": batch_labels(batch)[:, : self.max_labels]}

    def loss(
        self, trainable: vitcore.AbstractBackbone, state: Any, views: Batch, *, step: Int[Array, ""],
        key: PRNGKeyArray,
    ) -> tuple[Float[Array, ""], dict[str, Any]]:
        del state, step
        logits = trainable(views["image"], key=key, inference=False).logits
        return self.classification_loss(logits, views["labels"])

    def classification_loss(
        self, logits: Float[Array, "b k"], labels: Int[Array, "b m"]
    ) -> tuple[Float[Array, ""], dict[str, Any]]:
        """Softmax cross-entropy against ``multilabel_targets(labels)`` (-1 = padding) and the top-1 metric."""
        targets = multilabel_targets(labels, self.num_classes, smoothing=self.label_smoothing)
        loss = softmax_xent(logits, targets)
        top1 = jnp.argmax(logits, axis=-1).astype(jnp.int32)
        hit = jnp.any((labels == top1[:, None]) & (labels >= 0), axis=-1)
        return loss, {"metrics": {"accuracy": jnp.mean(hit.astype(jnp.float32))}}

    def encoder(self, trainable: vitcore.AbstractBackbone) -> vitcore.AbstractBackbone:
        return trainable

    def final_layers(self, trainable: vitcore.AbstractBackbone) -> tuple[eqx.Module, ...]:
        """The classifier (Brock et al. 2021 do not clip it with AGC)."""
        return (trainable.head,)


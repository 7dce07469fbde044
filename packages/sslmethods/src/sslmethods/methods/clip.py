"""CLIP: contrastive image-text pre-training with a ViT image tower and a BERT-style text tower.

Radford et al. 2021; the loss follows mlfoundations/open_clip ``ClipLoss`` (``losses.clip_loss``). The study
(Koppula et al. 2022, A.3) uses MAE's ViT (sin-cos position embedding) as the image encoder, a ``mini``
(4 x 256) or ``medium`` (8 x 512) text encoder, linear projections to a 768-d joint space, captions of at most
55 characters and, on labelled data, pseudo-captions "This is a photo of <label> and <label2> ..."
(``sslmethods.blocks.captions``)::

    method = CLIP(backbone=vitcore.get_config("vit-b16"), total_steps=250_000, class_names=names)
    host = method.prepare_batch(numpy_batch)     # image, caption_ids, caption_mask: tokenized on the host

The learnable log logit scale is clamped to ``[0, ln 100]`` after every optimizer step (``post_update``), as
open_clip's training loop does; otherwise it could pass ln 100, where the loss's clamp has zero gradient, and
stay there for good.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import equinox as eqx
import flopmeter
import jax
import jax.numpy as jnp
import numpy as np
import vitcore
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray
from vitcore import Linear

from ..blocks.augment import clip_views, make_views
from ..blocks.backbones import BackboneConfig, mae_flavour, train_macs
from ..blocks.captions import MAX_CAPTION_CHARS, batch_captions
from ..blocks.losses import CLIP_MAX_LOG_SCALE, clip_loss
from .method import AbstractMethod, Batch

__all__ = ["CLIP", "CLIPModel", "INIT_LOG_LOGIT_SCALE"]

INIT_LOG_LOGIT_SCALE = math.log(1 / 0.07)
"""open_clip's initial (log) logit scale; ``CLIP.post_update`` keeps it in ``[0, ln 100]``."""


def _projection(in_features: int, out_features: int, *, key: PRNGKeyArray) -> Linear:
    # open_clip initialises both projections as normal(0, width ** -0.5), without bias.
    layer = Linear(in_features, out_features, key=key, use_bias=False)
    weight = in_features**-0.5 * jax.random.normal(key, (out_features, in_features), jnp.float32)
    return eqx.tree_at(lambda m: m.weight, layer, weight)


class CLIPModel(eqx.Module):
    """CLIP's trainable parts. ``log_logit_scale`` is the learnable temperature (a float32 scalar)."""

    image_encoder: vitcore.AbstractBackbone
    text_encoder: vitcore.TextEncoder
    image_proj: Linear
    text_proj: Linear
    log_logit_scale: Float[Array, ""]

    def embed_images(
        self, images: Float[Array, "b h w c"], *, key: PRNGKeyArray | None = None, inference: bool = True
    ) -> Float[Array, "b e"]:
        """Un-normalised image embeddings: the pooled (class) token projected to the joint space."""
        return self.image_proj(self.image_encoder(images, key=key, inference=inference).pooled)

    def embed_texts(
        self,
        ids: Int[Array, "b l"],
        mask: Bool[Array, "b l"],
        *,
        key: PRNGKeyArray | None = None,
        inference: bool = True,
    ) -> Float[Array, "b e"]:
        """Un-normalised text embeddings: the CLS token projected to the joint space."""
        return self.text_proj(self.text_encoder(ids, mask, key=key, inference=inference).pooled)


class CLIP(AbstractMethod):
    """CLIP pre-training; trainable = ``CLIPModel``, no non-trainable state.

    ``total_steps`` is taken for the uniform constructor; this method has no step schedule.
    ``backbone`` becomes MAE's ViT (sin-cos position embedding, xavier init, no head); another vitcore family
    (an NFNet) is the image tower as it is, without a head. ``text_encoder`` is a
    ``vitcore.TEXT_PRESETS`` name (``text-mini``, ``text-medium``; ``text-test`` for unit tests), run in the
    backbone's compute dtype. ``class_names`` (index = label id) lets ``prepare_batch`` write pseudo-captions
    for examples without a caption; ``dataset_fields`` reads them from a dataset (what ``recipes`` uses).
    ``max_caption_chars`` (at most 55, the tokenizer's limit) cuts every caption. Weight decay: the default
    rule, i.e. matmul, projection and token-embedding weights decay; biases, norms, position embeddings, the
    class token and the logit scale do not (open_clip excludes gains, biases and ``logit_scale``).
    """

    name: ClassVar[str] = "clip"
    embed_dim: int = eqx.field(static=True, default=768)
    text_encoder: str = eqx.field(static=True, default="text-mini")
    max_caption_chars: int = eqx.field(static=True, default=MAX_CAPTION_CHARS)
    max_labels: int = eqx.field(static=True, default=8)
    class_names: tuple[str, ...] | None = eqx.field(static=True, default=None)

    def __check_init__(self) -> None:
        if not isinstance(self.embed_dim, int) or self.embed_dim < 1:
            raise ValueError(f"embed_dim={self.embed_dim!r}; expected a positive int (the study: 768)")
        if self.text_encoder not in vitcore.TEXT_PRESETS:
            raise ValueError(
                f"text_encoder={self.text_encoder!r}; expected one of {sorted(vitcore.TEXT_PRESETS)}"
            )
        if not 1 <= self.max_caption_chars <= vitcore.MAX_CAPTION_CHARS:
            raise ValueError(
                f"max_caption_chars={self.max_caption_chars!r}; expected 1..{vitcore.MAX_CAPTION_CHARS} "
                "(vitcore.tokenize cuts captions there)"
            )
        if self.max_labels < 1:
            raise ValueError(f"max_labels={self.max_labels!r}; expected a positive int")
        if self.class_names is not None and (
            not isinstance(self.class_names, tuple) or not all(isinstance(n, str) for n in self.class_names)
        ):
            raise TypeError(f"class_names={self.class_names!r}; expected None or a tuple of str")
        self.encoder_config  # noqa: B018  (validates a ViT's sin-cos width through ViTConfig)

    @property
    def encoder_config(self) -> BackboneConfig:
        """The image tower: ``backbone`` as MAE's ViT (sin-cos position embedding, xavier init, no head;
        `backbones.mae_flavour`)."""
        return mae_flavour(self.backbone)

    @property
    def text_config(self) -> vitcore.TextConfig:
        preset = vitcore.TEXT_PRESETS[self.text_encoder]
        return dataclasses.replace(preset, compute_dtype=self.backbone.compute_dtype)

    @property
    def context_length(self) -> int:
        """Tokens per caption: CLS, the pieces of 55 characters and SEP, capped at the text positions."""
        return min(vitcore.MAX_CAPTION_CHARS + 2, self.text_config.max_length)

    @classmethod
    def dataset_fields(cls, dataset_dir: str | Path) -> dict[str, Any]:
        """``class_names``: the dataset's label names, for the pseudo-captions of examples without a caption;
        ``{}`` for a dataset without labels (captions only: every example brings its own)."""
        from flopdata import label_names, open_builder  # here: a method is usable without the dataset readers

        if not {"label", "labels"} & set(open_builder(str(dataset_dir)).info.features.keys()):
            return {}
        return {"class_names": tuple(label_names(dataset_dir))}

    def batch_spec(self, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
        """The image and its tokenised caption: ``caption_ids`` int32 and ``caption_mask`` bool, [b, L]."""
        tokens = (batch_size, self.context_length)
        return super().batch_spec(batch_size) | {"caption_ids": jax.ShapeDtypeStruct(tokens, jnp.int32),
                                                 "caption_mask": jax.ShapeDtypeStruct(tokens, jnp.bool_)}

    def analytic_macs(self, batch_size: int) -> float:
        """Forward + backward of the image tower (image size) and of the text tower (``context_length``
        tokens; its embedding lookup has no MACs). The projections and the b x b similarity are left out."""
        text = self.text_config
        text_forward = flopmeter.text_encoder_macs(seq_len=self.context_length, width=text.width,
                                                   depth=text.depth, mlp_ratio=text.mlp_ratio)
        return float(batch_size * (train_macs(self.encoder_config) + 3 * text_forward))

    def init(self, *, key: PRNGKeyArray) -> tuple[CLIPModel, dict[str, Any]]:
        k_img, k_txt, k_iproj, k_tproj = jax.random.split(key, 4)
        image = vitcore.build(self.encoder_config, key=k_img)
        text = vitcore.TextEncoder(self.text_config, key=k_txt)
        model = CLIPModel(
            image_encoder=image,
            text_encoder=text,
            image_proj=_projection(image.num_features, self.embed_dim, key=k_iproj),
            text_proj=_projection(self.text_config.width, self.embed_dim, key=k_tproj),
            log_logit_scale=jnp.asarray(INIT_LOG_LOGIT_SCALE, jnp.float32),
        )
        return model, {}

    def prepare_batch(self, batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Host side: captions (or pseudo-captions from ``label``/``labels`` and ``class_names``) tokenized to
        ``caption_ids`` int32 [b, L] and ``caption_mask`` bool [b, L]; returns those and ``image`` (float32)."""
        if "image" not in batch:
            raise ValueError(f"batch has keys {sorted(batch)}; expected an 'image' entry")
        texts = batch_captions(
            dict(batch), self.class_names, max_labels=self.max_labels, max_chars=self.max_caption_chars
        )
        ids, mask = vitcore.tokenize(texts, max_length=self.context_length)
        return {"image": np.asarray(batch["image"], np.float32), "caption_ids": np.asarray(ids, np.int32),
                "caption_mask": np.asarray(mask, np.bool_)}

    def views(self, batch: Batch, *, step: Int[Array, ""], key: PRNGKeyArray) -> Batch:
        del step
        for name in ("caption_ids", "caption_mask"):
            if name not in batch:
                raise ValueError(
                    f"batch has keys {sorted(batch)}; CLIP needs {name!r}: run method.prepare_batch on the "
                    "host batch first"
                )
        (image,) = make_views(batch["image"], clip_views(self.image_size), key=key)
        return {"image": image, "caption_ids": batch["caption_ids"], "caption_mask": batch["caption_mask"]}

    def loss(
        self, trainable: CLIPModel, state: Any, views: Batch, *, step: Int[Array, ""], key: PRNGKeyArray
    ) -> tuple[Float[Array, ""], dict[str, Any]]:
        del state, step
        k_img, k_txt = jax.random.split(key)
        img = trainable.embed_images(views["image"], key=k_img, inference=False)
        txt = trainable.embed_texts(views["caption_ids"], views["caption_mask"], key=k_txt, inference=False)
        loss = clip_loss(img, txt, trainable.log_logit_scale)
        log_scale = jnp.clip(trainable.log_logit_scale, 0.0, CLIP_MAX_LOG_SCALE)
        unit_txt = txt * jax.lax.rsqrt(jnp.maximum(jnp.sum(jnp.square(txt), axis=-1, keepdims=True), 1e-12))
        sim = img @ unit_txt.T  # a row's argmax does not depend on that image's norm
        hits = jnp.argmax(sim, axis=1) == jnp.arange(sim.shape[0])
        metrics = {
            "logit_scale": jnp.exp(jax.lax.stop_gradient(log_scale)),
            "image_to_text_accuracy": jnp.mean(hits.astype(jnp.float32)),
        }
        return loss, {"metrics": metrics}

    def post_update(self, trainable: CLIPModel, *, step: Int[Array, ""]) -> CLIPModel:
        """Clamps the log logit scale to ``[0, ln 100]`` after the optimizer step (open_clip ``train.py``:
        ``logit_scale.clamp_(0, math.log(100))``)."""
        del step
        clamped = jnp.clip(trainable.log_logit_scale, 0.0, CLIP_MAX_LOG_SCALE)
        return eqx.tree_at(lambda m: m.log_logit_scale, trainable, clamped)

    def encoder(self, trainable: CLIPModel) -> vitcore.AbstractBackbone:
        return trainable.image_encoder

    def final_layers(self, trainable: CLIPModel) -> tuple[eqx.Module, ...]:
        """The two projections into the joint space."""
        return (trainable.image_proj, trainable.text_proj)

"""The detection fine-tuning optimizer: AdamW, linear warmup + step decay, optional layer-wise LR decay.

Two named recipes (`DETECTION_RECIPES`):

- ``"study"`` (`STUDY_RECIPE`): the study's detection transfer (Koppula et al. 2022, appendix A.6): 22K steps.
  The appendix gives no optimisation settings of its own: it says the Mask R-CNN "has the same configuration and
  optimization settings as the ResNet-50 based Mask-RCNN" of Hénaff et al. 2021 (DetCon) and 2022 (Odin). Those
  papers' settings are not in the study's text, so this preset keeps the study's length and, for the rest, the
  settings of the ViTDet recipe below (batch 64 at 1024x1024, AdamW, warmup, step decays at 8/9 and 26/27 of the
  run, layer decay, drop path), scaled to 22K steps. Runs recorded with it keep these numbers.
- ``"vitdet"`` (`VITDET_RECIPE`): ViTDet's own COCO recipe for ViT-B (Li et al. 2022; detectron2
  ``projects/ViTDet`` configs): 100 epochs = 184,375 steps at batch 64 and 1024x1024, AdamW lr 1e-4, betas
  0.9/0.999, weight decay 0.1, 250 warmup steps from factor 0.001, decays x0.1 at steps 163,889 and 177,546 (8/9
  and 26/27 of the run), layer-wise decay 0.7, drop path 0.1 in the encoder.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import numpy as np
import optax
import vitcore
from jaxtyping import PyTree
from runloop import scale_by_tree, standard_promotion

from .model import MaskRCNN

__all__ = [
    "DETECTION_RECIPES",
    "DetectionRecipe",
    "STUDY_RECIPE",
    "VITDET_RECIPE",
    "warmup_step_schedule",
    "detector_weight_decay_mask",
    "layer_decay_scales",
    "detection_optimizer",
]


@dataclasses.dataclass(frozen=True)
class DetectionRecipe:
    """One fine-tuning schedule. ``decay_fractions`` are the fractions of ``steps`` after which the learning rate
    is multiplied by ``gamma``; ``layer_decay`` None = one learning rate for every parameter."""

    steps: int = 22_000
    batch_size: int = 64
    image_size: int = 1024
    peak_lr: float = 1e-4
    weight_decay: float = 0.1
    b1: float = 0.9
    b2: float = 0.999
    warmup_steps: int = 250
    warmup_factor: float = 0.001
    decay_fractions: tuple[float, ...] = (8 / 9, 26 / 27)
    gamma: float = 0.1
    layer_decay: float | None = 0.7
    drop_path: float = 0.1

    def __post_init__(self):
        for name in ("steps", "batch_size", "image_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DetectionRecipe.{name}={value!r}; expected a positive int")
        if not 0 <= self.warmup_steps < self.steps:
            raise ValueError(f"DetectionRecipe.warmup_steps={self.warmup_steps}; expected in [0, steps={self.steps})")
        fractions = list(self.decay_fractions)
        if any(not 0 < f < 1 for f in fractions) or fractions != sorted(fractions):
            raise ValueError(f"DetectionRecipe.decay_fractions={self.decay_fractions!r}; expected increasing in (0, 1)")
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ValueError(f"DetectionRecipe.layer_decay={self.layer_decay!r}; expected None or in (0, 1]")

    @property
    def milestones(self) -> tuple[int, ...]:
        return tuple(int(round(f * self.steps)) for f in self.decay_fractions)

    def schedule(self) -> optax.Schedule:
        return warmup_step_schedule(
            self.peak_lr, warmup_steps=self.warmup_steps, warmup_factor=self.warmup_factor,
            milestones=self.milestones, gamma=self.gamma,
        )


# The study's length (appendix A.6); the other numbers are VITDET_RECIPE's (see the module docstring).
STUDY_RECIPE = DetectionRecipe()
# ViTDet's 100-epoch COCO recipe for ViT-B (detectron2 projects/ViTDet, mask_rcnn_vitdet_b_100ep).
VITDET_RECIPE = DetectionRecipe(steps=184_375)
DETECTION_RECIPES: dict[str, DetectionRecipe] = {"study": STUDY_RECIPE, "vitdet": VITDET_RECIPE}


def warmup_step_schedule(
    peak_lr: float, *, warmup_steps: int, warmup_factor: float, milestones: tuple[int, ...], gamma: float = 0.1
) -> optax.Schedule:
    """detectron2 ``WarmupParamScheduler(MultiStepParamScheduler)``: at step ``t``,
    ``peak_lr * gamma ** #(milestones <= t) * (warmup_factor + (1 - warmup_factor) * t / warmup_steps)`` while
    ``t < warmup_steps``, without the warmup factor afterwards.

    Example:
        >>> s = warmup_step_schedule(1e-4, warmup_steps=10, warmup_factor=0.001, milestones=(80, 90))
        >>> [round(float(s(t)), 10) for t in (0, 5, 10, 85, 95)]
        [1e-07, 5.005e-05, 0.0001, 1e-05, 1e-06]
    """
    if not peak_lr > 0:
        raise ValueError(f"peak_lr={peak_lr!r}: expected > 0")
    if not 0.0 <= warmup_factor <= 1.0:
        raise ValueError(f"warmup_factor={warmup_factor!r}: expected in [0, 1]")
    bounds = np.asarray(milestones, np.int32)

    def schedule(step):
        t = jax.numpy.asarray(step, jax.numpy.float32)
        decays = jax.numpy.sum(jax.numpy.asarray(bounds, jax.numpy.float32) <= t)
        lr = peak_lr * jax.numpy.power(jax.numpy.float32(gamma), decays.astype(jax.numpy.float32))
        if warmup_steps:
            ramp = warmup_factor + (1.0 - warmup_factor) * t / warmup_steps
            lr = jax.numpy.where(t < warmup_steps, lr * ramp, lr)
        return lr

    return schedule


def detector_weight_decay_mask(model: MaskRCNN) -> PyTree[bool]:
    """True for leaves that decay: the encoder's own rule (`vitcore.weight_decay_mask`: matmul/conv weights;
    not biases, norms, position embeddings, class token) and, in the heads, every leaf named ``weight`` (convs,
    deconvs, fcs; not biases or LayerNorms). detectron2 also decays biases; timm/MAE-style fine-tuning does not."""
    params = eqx.filter(model, eqx.is_array)

    def decide(path, leaf):
        last = path[-1]
        return isinstance(last, jax.tree_util.GetAttrKey) and last.name == "weight"

    mask = jax.tree_util.tree_map_with_path(decide, params)
    return eqx.tree_at(lambda m: m.encoder, mask, vitcore.weight_decay_mask(model.encoder))


def _layer_ids(model: MaskRCNN) -> Callable[[Any], int | None]:
    """ViTDet's ``get_vit_lr_decay_rate`` read through the backbone face: the encoder's ``feature_info`` names
    its layers (``blocks.i`` for a ViT, ``stages.i`` for an NFNet: one layer per stage); leaves of layer i -> i + 1,
    encoder leaves before the first layer (patch embedding, position embedding, class token; an NFNet's stem) ->
    0, everything else (final norm or conv, pyramid, heads) -> depth + 1. None for stacked (scanned) layers, whose
    leaves carry all depths on their leading axis."""
    info = model.encoder.feature_info
    module = info[0].name.split(".")[0]
    if [entry.name for entry in info] != [f"{module}.{i}" for i in range(len(info))]:
        names = [entry.name for entry in info]
        raise ValueError(f"encoder feature_info names {names}: layer decay expects '<module>.<i>' for i = 0, 1, ...")
    depth = len(info)
    paths = [path for path, _ in jax.tree_util.tree_flatten_with_path(eqx.filter(model, eqx.is_array))[0]]

    def names(path):
        return [k.name for k in path if isinstance(k, jax.tree_util.GetAttrKey)]

    first = next(i for i, path in enumerate(paths) if names(path)[:2] == ["encoder", module])
    before = {jax.tree_util.keystr(path) for path in paths[:first]}

    def layer_id(path) -> int | None:
        parts = names(path)
        if not parts or parts[0] != "encoder":
            return depth + 1
        if parts[1] == module:
            index = [k.idx for k in path if isinstance(k, jax.tree_util.SequenceKey)]
            return index[0] + 1 if index else None
        return 0 if jax.tree_util.keystr(path) in before else depth + 1

    return layer_id


def layer_decay_scales(model: MaskRCNN, rate: float) -> PyTree[Any]:
    """Learning-rate multipliers ``rate ** (depth + 1 - layer)`` per leaf (structure of ``eqx.filter(model,
    eqx.is_array)``; depth = ``len(encoder.feature_info)``): heads and pyramid 1, encoder layer i (a ViT's block,
    an NFNet's stage) ``rate ** (depth - i)``, embeddings / stem ``rate ** (depth + 1)``. Scanned blocks get an
    array of scales broadcast over their stacked axis."""
    if not 0 < rate <= 1:
        raise ValueError(f"rate={rate!r}: expected a layer-wise decay in (0, 1]")
    depth = len(model.encoder.feature_info)
    layer_id = _layer_ids(model)
    params = eqx.filter(model, eqx.is_array)

    def scale(path, leaf):
        layer = layer_id(path)
        if layer is None:  # stacked blocks: leading axis = block index
            per_block = rate ** (depth - np.arange(depth, dtype=np.float64))
            return per_block.astype(np.float32).reshape((depth,) + (1,) * (leaf.ndim - 1))
        return float(rate ** (depth + 1 - layer))

    return jax.tree_util.tree_map_with_path(scale, params)


def detection_optimizer(model: MaskRCNN, recipe: DetectionRecipe = STUDY_RECIPE) -> optax.GradientTransformation:
    """``scale_by_adam -> add_decayed_weights(mask) -> scale_by_learning_rate(schedule) [-> layer scales]``: AdamW
    with decoupled decay (torch ``AdamW``: the decay is multiplied by the learning rate and its layer scale). No
    gradient clipping (ViTDet has none). The step counter lives in ``scale_by_learning_rate``'s state."""
    parts = [
        standard_promotion(optax.scale_by_adam(b1=recipe.b1, b2=recipe.b2, eps=1e-8)),
        optax.add_decayed_weights(recipe.weight_decay, mask=detector_weight_decay_mask(model)),
        optax.scale_by_learning_rate(recipe.schedule()),
    ]
    if recipe.layer_decay is not None and recipe.layer_decay != 1.0:
        parts.append(scale_by_tree(layer_decay_scales(model, recipe.layer_decay)))
    return optax.chain(*parts)

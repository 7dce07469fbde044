"""A configured method from names: (method, backbone preset, preset, run length) -> (method, OptimConfig).

The glue that ``tools/pretrain.py``, ``tools/profile_flops.py`` and ``benchmarks/train_step.py`` share, so the
scripts stay thin::

    method, optim = build_method("dino", "vit-test", preset="demo", total_steps=50)

Each method turns the backbone config into the study's flavour itself (e.g. MAE's sin-cos ViT for SimCLR,
BYOL, CLIP and MAE). Dataset-dependent fields (supervised ``num_classes``, CLIP ``class_names``) come from
``dataset_overrides``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .method import AbstractMethod
from .optim import OptimConfig
from .presets import get_preset


def _registry() -> Mapping[str, type[AbstractMethod]]:
    from .registry import METHODS  # late: the method modules import much more than the engine needs

    return METHODS


def method_names() -> tuple[str, ...]:
    return tuple(_registry())


def build_method(
    name: str,
    model: str,
    *,
    preset: str,
    total_steps: int,
    image_size: int | None = None,
    method_overrides: Mapping[str, Any] | None = None,
    model_overrides: Mapping[str, Any] | None = None,
    optim_overrides: Mapping[str, Any] | None = None,
) -> tuple[AbstractMethod, OptimConfig]:
    """The method ``name`` on backbone preset ``model`` with preset ``preset``'s hyperparameters.

    Explicit ``*_overrides`` win over the preset. Unknown names raise ValueError listing the valid ones.
    """
    import vitcore

    registry = _registry()
    if name not in registry:
        raise ValueError(f"method={name!r}; expected one of {', '.join(registry)}")
    if model not in vitcore.PRESETS:
        raise ValueError(f"model={model!r}; expected one of {', '.join(vitcore.PRESETS)}")
    overrides, optim = get_preset(name, preset)
    backbone_kwargs = dict(model_overrides or {})
    if image_size is not None:
        backbone_kwargs["image_size"] = image_size
    backbone = vitcore.get_config(model, **backbone_kwargs)
    kwargs = {**overrides, **(method_overrides or {})}
    method = registry[name](backbone=backbone, total_steps=total_steps, **kwargs)
    if optim_overrides:
        optim = dataclasses.replace(optim, **optim_overrides)
    return method, optim


def dataset_overrides(name: str, dataset_dir: str | Path | None) -> dict[str, Any]:
    """Method fields that depend on the dataset: the class count (supervised) and class names (CLIP)."""
    if dataset_dir is None or name not in ("supervised", "clip"):
        return {}
    from .captions import label_names

    names = label_names(dataset_dir)
    return {"num_classes": len(names)} if name == "supervised" else {"class_names": tuple(names)}


def knn_splits(directory: str | Path, *, image_size: int, bank_size: int = 1000, query_size: int = 500,
               seed: int = 0) -> Any:
    """A kNN monitor split from a dataset: ``bank_size`` train examples as the memory bank and ``query_size``
    examples of the ``test`` split as queries (DINO's protocol). Multi-label sets vote with their first label.
    Returns a ``trainer.KnnSplits``."""
    import numpy as np

    from .data import PretrainData, pretrain_loader
    from .records import RecordSource
    from .trainer import KnnSplits

    def take(split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        n = min(n, len(RecordSource(str(directory), split)))  # small builds have small test splits
        loader = pretrain_loader(PretrainData(str(directory), batch_size=n, split=split, image_size=image_size,
                                              seed=seed, num_epochs=1))
        batch = next(iter(loader))
        labels = batch["label"] if "label" in batch else batch["labels"][:, 0]
        return batch["image"], labels.astype(np.int32)

    bank_x, bank_y = take("train", bank_size)
    query_x, query_y = take("test", query_size)
    from .captions import label_names

    return KnnSplits(bank_x, bank_y, query_x, query_y, num_classes=len(label_names(directory)))


def _numeric_only(batch: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    return {k: v for k, v in batch.items() if np.asarray(v).dtype.kind not in "USO"}


def host_fn(method: AbstractMethod) -> Any:
    """What runs on each host batch before it goes to the devices: CLIP tokenises captions (and writes
    pseudo-captions from labels) with its ``prepare_batch``; every method drops string fields."""
    from .clip import CLIP

    if isinstance(method, CLIP):
        return lambda batch: _numeric_only(method.prepare_batch(batch))
    return _numeric_only


def batch_struct(method: AbstractMethod, batch: int) -> dict[str, Any]:
    """The host batch a method trains on, as ``jax.ShapeDtypeStruct`` (for abstract FLOP measurement): images
    at the backbone's size, plus ``label`` (supervised) or tokenised captions (CLIP)."""
    import jax
    import jax.numpy as jnp
    import vitcore

    from .clip import CLIP
    from .supervised import Supervised

    cfg = method.backbone
    h, w = vitcore.image_hw(cfg.image_size)
    out = {"image": jax.ShapeDtypeStruct((batch, h, w, cfg.in_channels), jnp.float32)}
    if isinstance(method, Supervised):
        out["label"] = jax.ShapeDtypeStruct((batch,), jnp.int32)
    if isinstance(method, CLIP):
        out["caption_ids"] = jax.ShapeDtypeStruct((batch, method.context_length), jnp.int32)
        out["caption_mask"] = jax.ShapeDtypeStruct((batch, method.context_length), jnp.bool_)
    return out

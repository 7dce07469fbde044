"""A configured method from names: (method, backbone preset, preset, run length) -> (method, OptimConfig).

The glue that ``tools/pretrain.py``, ``tools/profile_flops.py`` and ``benchmarks/train_step.py`` share, so the
scripts stay thin::

    method, optim = build_method("dino", "vit-test", preset="demo", total_steps=50)
    method, optim = build_method("mypkg.simsiam:SimSiam", "vit-test", preset="demo", total_steps=50)

``method`` is a registered name, an import path ``"package.module:ClassName"`` or a method class
(``registry.get_method``). Each method turns the backbone config into the study's flavour itself (e.g. MAE's
sin-cos ViT for SimCLR, BYOL, CLIP and MAE). Fields that depend on the dataset (supervised ``num_classes``, CLIP
``class_names``) come from the method's ``dataset_fields`` through ``dataset_overrides``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import flopcli
import numpy as np
import vitcore

from ..blocks.backbones import check_method_backbone
from ..methods.method import AbstractMethod
from ..methods.registry import METHODS, get_method
from .optim import OptimConfig
from .presets import get_preset
from .trainer import KnnSplits


def _registry() -> Mapping[str, type[AbstractMethod]]:
    return METHODS


def method_names() -> tuple[str, ...]:
    """The registered (built-in) method names."""
    return tuple(_registry())


def method_class(method: str | type[AbstractMethod]) -> type[AbstractMethod]:
    """``method`` as a class: a registered name or ``"package.module:ClassName"`` resolved by
    ``registry.get_method``; a class is checked and returned."""
    if isinstance(method, type):
        if not issubclass(method, AbstractMethod):
            raise TypeError(f"method={method!r}; expected an AbstractMethod subclass")
        return method
    return get_method(method)


def check_overrides(cls: type[AbstractMethod], overrides: Mapping[str, Any], *, what: str = "method_overrides"
                    ) -> None:
    """ValueError naming every key of ``overrides`` that is not one of ``cls.hyperparameter_names()``."""
    valid = cls.hyperparameter_names()
    unknown = [key for key in overrides if key not in valid]
    if unknown:
        raise ValueError(f"{what} has {', '.join(map(repr, unknown))}, not field(s) of {cls.__name__}; expected "
                         f"some of {', '.join(valid)}")


def build_method(
    method: str | type[AbstractMethod],
    model: str,
    *,
    preset: str,
    total_steps: int,
    image_size: int | None = None,
    method_overrides: Mapping[str, Any] | None = None,
    model_overrides: Mapping[str, Any] | None = None,
    optim_overrides: Mapping[str, Any] | None = None,
    backbone: Any = None,
) -> tuple[AbstractMethod, OptimConfig]:
    """The method ``method`` on backbone preset ``model`` with preset ``preset``'s hyperparameters.

    ``backbone``: a backbone config to build on instead of ``model``'s preset config (``model`` still names it),
    e.g. a first stage's exported encoder (`init_from.exported_encoder_config`); ``image_size`` and
    ``model_overrides`` apply on top.

    Explicit ``*_overrides`` win over the preset. A user's method gets the presets' fallback (``presets``:
    its own field defaults and SimCLR's optimizer). Unknown names and override keys raise ValueError listing the
    valid ones, before anything is built.
    """
    cls = method_class(method)
    if model not in vitcore.PRESETS:
        raise ValueError(f"model={model!r}; expected one of {', '.join(vitcore.PRESETS)}")
    check_overrides(cls, method_overrides or {})
    overrides, optim = get_preset(cls, preset)
    if optim_overrides:
        valid = [f.name for f in dataclasses.fields(OptimConfig)]
        unknown = [key for key in optim_overrides if key not in valid]
        if unknown:
            raise ValueError(f"optim_overrides has {', '.join(map(repr, unknown))}; expected some of "
                             f"{', '.join(valid)}")
        optim = dataclasses.replace(optim, **optim_overrides)
    backbone_kwargs = dict(model_overrides or {})
    if image_size is not None:
        backbone_kwargs["image_size"] = image_size
    if backbone is None:
        config = vitcore.get_config(model, **backbone_kwargs)
    else:
        vitcore.family_of(backbone)  # TypeError naming the valid config classes
        config = dataclasses.replace(backbone, **backbone_kwargs)
    check_method_backbone(cls.name, cls.vit_only, config, model=model)
    fields = {**overrides, **(method_overrides or {})}
    if cls in _registry().values():
        return cls(backbone=config, total_steps=total_steps, **fields), optim
    # a user's class may raise anything while it checks its fields: one error naming it
    with flopcli.user_code(f"method {cls.__module__}:{cls.__qualname__}: building it"):
        return cls(backbone=config, total_steps=total_steps, **fields), optim


def dataset_overrides(method: str | type[AbstractMethod], dataset_dir: str | Path | None) -> dict[str, Any]:
    """The method's fields that depend on the dataset at ``dataset_dir`` (``AbstractMethod.dataset_fields``:
    the class count of supervised, the class names of CLIP, ``{}`` for most); ``{}`` without a dataset."""
    if dataset_dir is None:
        return {}
    cls = method_class(method)
    if cls in _registry().values():
        return cls.dataset_fields(dataset_dir)
    with flopcli.user_code(f"method {cls.__module__}:{cls.__qualname__}: dataset_fields({str(dataset_dir)!r})"):
        return cls.dataset_fields(dataset_dir)


def knn_splits(directory: str | Path, *, image_size: int, bank_size: int = 1000, query_size: int = 500,
               seed: int = 0) -> Any:
    """A kNN monitor split from a dataset: ``bank_size`` train examples as the memory bank and ``query_size``
    examples of the ``test`` split as queries (DINO's protocol). Multi-label sets vote with their first label.
    Every process of a multi-host run reads the whole split (the monitor runs the same on each), not its shard.
    Returns a ``trainer.KnnSplits``."""
    # Here, not at the top: the dataset readers (grain, flopdata) load only for a run that reads a dataset.
    from flopdata import RecordSource, label_names

    from .data import PretrainData, pretrain_loader

    def take(split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        n = min(n, len(RecordSource(str(directory), split)))  # small builds have small test splits
        loader = pretrain_loader(PretrainData(str(directory), batch_size=n, split=split, image_size=image_size,
                                              seed=seed, num_epochs=1, shard_index=0, shard_count=1))
        batch = next(iter(loader))
        labels = batch["label"] if "label" in batch else batch["labels"][:, 0]
        return batch["image"], labels.astype(np.int32)

    bank_x, bank_y = take("train", bank_size)
    query_x, query_y = take("test", query_size)
    return KnnSplits(bank_x, bank_y, query_x, query_y, num_classes=len(label_names(directory)))

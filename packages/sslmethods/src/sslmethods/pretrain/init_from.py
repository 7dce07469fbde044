"""Starting a pre-training run from an earlier run's encoder: the second stage of MAE pre-pretraining.

Singh et al. 2023 ("The effectiveness of MAE pre-pretraining for billion-scale pretraining") first train MAE on
the pre-training images, then train supervised (or CLIP) starting from the MAE encoder. Here the first stage is an
ordinary run; the second stage is built on the architecture that run exported and loads its weights::

    first, _ = recipes.build_method("mae", "vit-b16", preset="paper:i1k", total_steps=100_000)
    second, optim = recipes.build_method("supervised", "vit-b16", preset="paper:i1k", total_steps=250_000,
                                         backbone=exported_encoder_config(first))     # MAE's sin-cos ViT
    trainer.train_method(second, optim, data, TrainConfig(out_dir, loop, init_from="runs/mae"))

`load_encoder_into` puts the loaded encoder's arrays in place of the new method's encoder (its classifier head,
projectors and decoders stay freshly initialised), and in every piece of method state initialised as that encoder
(an EMA teacher sharing its arrays, as BYOL's and DINO's ``init`` return): exactly, array for array.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import vitcore

from ..blocks.backbones import BackboneConfig
from ..methods.method import AbstractMethod

__all__ = ["check_stage_one", "exported_encoder_config", "load_encoder_into", "load_stage_one"]


def exported_encoder_config(method: AbstractMethod) -> BackboneConfig:
    """The config of the encoder ``method`` exports, headless (found abstractly: nothing is allocated). A second
    stage built on it (``recipes.build_method(..., backbone=...)``) has the first stage's architecture."""
    trainable, _ = eqx.filter_eval_shape(method.init, key=jax.random.key(0))
    encoder = method.encoder(trainable)
    if not isinstance(encoder, vitcore.AbstractBackbone):
        raise TypeError(f"{type(method).__name__}.encoder returns a {type(encoder).__name__}; a first stage must "
                        "export a vitcore backbone")
    return encoder.without_head().config


def check_stage_one(run_dir: str | Path) -> None:
    """ValueError naming ``run_dir`` unless it holds a finished run's encoder (``summary.json``, written when a
    run completes, and ``encoder.json``)."""
    directory = Path(run_dir)
    if not (directory / "summary.json").is_file() or not (directory / vitcore.ENCODER_CONFIG_FILE).is_file():
        raise ValueError(f"init_from={str(run_dir)!r}: not a finished pre-training run (no summary.json and "
                         f"{vitcore.ENCODER_CONFIG_FILE}); finish the first stage first")


def load_stage_one(run_dir: str | Path) -> vitcore.AbstractBackbone:
    """The encoder a finished run in ``run_dir`` exported (`check_stage_one`, then ``vitcore.load_pretrained``)."""
    check_stage_one(run_dir)
    return vitcore.load_pretrained(run_dir)


def _arrays(module: eqx.Module) -> list[Any]:
    return jax.tree.leaves(eqx.filter(module, eqx.is_array))


def load_encoder_into(method: AbstractMethod, trainable: eqx.Module, state: Any,
                      encoder: vitcore.AbstractBackbone) -> tuple[eqx.Module, Any]:
    """``(trainable, state)`` with ``encoder``'s arrays in place of ``method.encoder(trainable)``'s (a head of
    the method's encoder is kept), also where ``state`` holds the same arrays (a teacher initialised as the
    student). ``trainable`` and ``state`` must come straight from ``method.init`` (before ``init_pretrain_state``
    copies shared buffers). ValueError when the architectures or the input normalisations differ."""
    current = method.encoder(trainable)
    if not isinstance(current, vitcore.AbstractBackbone) or type(current) is not type(encoder):
        raise ValueError(f"{type(method).__name__}'s encoder is a {type(current).__name__}; the encoder to load is "
                         f"a {type(encoder).__name__}: build the second stage on the first stage's backbone "
                         "(exported_encoder_config)")
    body, source = current.without_head(), encoder.without_head()
    if (tuple(body.config.mean), tuple(body.config.std)) != (tuple(source.config.mean), tuple(source.config.std)):
        raise ValueError(f"the encoder to load normalises with mean {source.config.mean} / std {source.config.std}; "
                         f"{type(method).__name__}'s with {body.config.mean} / {body.config.std}")
    old, new = _arrays(body), _arrays(source)
    shapes = [(x.shape, x.dtype) for x in old]
    if shapes != [(x.shape, x.dtype) for x in new]:
        raise ValueError(f"the encoder to load does not fit {type(method).__name__}'s encoder ({len(new)} vs "
                         f"{len(old)} arrays, or other shapes): build the second stage on the first stage's "
                         "backbone (exported_encoder_config)")
    if len({id(x) for x in old}) != len(old):
        raise ValueError(f"{type(method).__name__}'s encoder holds one array in two places; cannot load into it")
    replacement = {id(a): b for a, b in zip(old, new, strict=True)}

    def swap(x: Any) -> Any:
        return replacement.get(id(x), x)

    return jax.tree.map(swap, trainable), jax.tree.map(swap, state)

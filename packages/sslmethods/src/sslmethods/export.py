"""The exported encoder of a run: ``encoder.eqx`` (``eqx.tree_serialise_leaves``) + ``encoder.json``.

For a ``vitcore.ViT`` the JSON holds its ``ViTConfig`` so ``load_encoder`` rebuilds the module and reads the
weights back; other encoders record their class name and can be read with ``eqx.tree_deserialise_leaves`` given
a like-shaped module.

Example::

    export_encoder(method.encoder(state.trainable), run_dir)
    vit = load_encoder(run_dir)
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import equinox as eqx
import jax

from .run_files import write_bytes_atomic, write_json_atomic

WEIGHTS, CONFIG = "encoder.eqx", "encoder.json"


def export_encoder(encoder: eqx.Module, directory: str | Path) -> Path:
    """Writes the encoder's weights and config into ``directory`` (atomically); returns the weights path."""
    directory = Path(directory)
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, encoder)
    write_bytes_atomic(directory / WEIGHTS, buffer.getvalue())
    import vitcore  # here, not at module level: the engine trains non-ViT encoders without it

    if isinstance(encoder, vitcore.ViT):
        info = {"class": "vitcore.ViT", "config": dataclasses.asdict(encoder.config)}
    else:
        info = {"class": f"{type(encoder).__module__}.{type(encoder).__qualname__}", "config": None}
    write_json_atomic(directory / CONFIG, info)
    return directory / WEIGHTS


def load_encoder(directory: str | Path) -> eqx.Module:
    """Rebuilds a ``vitcore.ViT`` exported by ``export_encoder`` (ValueError for other encoder classes)."""
    import json

    import vitcore

    directory = Path(directory)
    info = json.loads((directory / CONFIG).read_text())
    if info["class"] != "vitcore.ViT":
        raise ValueError(f"{directory / CONFIG} holds a {info['class']}; load_encoder rebuilds vitcore.ViT only")
    config = info["config"]
    if isinstance(config["image_size"], list):
        config["image_size"] = tuple(config["image_size"])
    like = vitcore.ViT(vitcore.ViTConfig(**config), key=jax.random.key(0))
    return eqx.tree_deserialise_leaves(directory / WEIGHTS, like)

"""The exported encoder of a run: ``encoder.eqx`` (``eqx.tree_serialise_leaves``) + ``encoder.json``.

A ``vitcore.ViT`` is written by `vitcore.save_pretrained` (its ``ViTConfig`` in the JSON), so ``load_encoder``
here, `vitcore.load_pretrained` and `segtransfer` all read run directories the same way. Other encoders (e.g. a
user's toy backbone) record their class name; read them back with ``eqx.tree_deserialise_leaves`` given a
like-shaped module.

Example::

    export_encoder(method.encoder(state.trainable), run_dir)
    vit = load_encoder(run_dir)
"""

from __future__ import annotations

import io
from pathlib import Path

import equinox as eqx
import vitcore

from .run_files import write_bytes_atomic, write_json_atomic

WEIGHTS, CONFIG = vitcore.ENCODER_WEIGHTS_FILE, vitcore.ENCODER_CONFIG_FILE


def export_encoder(encoder: eqx.Module, directory: str | Path) -> Path:
    """Writes the encoder's weights and config into ``directory`` (atomically); returns the weights path."""
    if isinstance(encoder, vitcore.ViT):
        return vitcore.save_pretrained(encoder, directory)
    directory = Path(directory)
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, encoder)
    write_bytes_atomic(directory / WEIGHTS, buffer.getvalue())
    write_json_atomic(directory / CONFIG, {"class": f"{type(encoder).__module__}.{type(encoder).__qualname__}",
                                           "config": None})
    return directory / WEIGHTS


def load_encoder(directory: str | Path) -> vitcore.ViT:
    """Rebuilds the ``vitcore.ViT`` exported by ``export_encoder`` (ValueError for other encoder classes)."""
    return vitcore.load_pretrained(directory)

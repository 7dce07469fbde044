"""The exported encoder of a run: ``encoder.eqx`` (``eqx.tree_serialise_leaves``) + ``encoder.json``, written
atomically through runloop, weights first and config last.

A vitcore backbone's files come from `vitcore.encoder_files` (its config in the JSON), so
`vitcore.load_pretrained` (which rebuilds it) and `segtransfer` read run directories the same way. Other encoders
(e.g. a user's toy backbone) record their class name; read them back with ``eqx.tree_deserialise_leaves`` given
a like-shaped module.

Example::

    export_encoder(method.encoder(state.model), run_dir)
    vit = vitcore.load_pretrained(run_dir)
"""

from __future__ import annotations

import io
from pathlib import Path

import equinox as eqx
import runloop
import vitcore


def _files(encoder: eqx.Module) -> dict[str, bytes]:
    """The two files of ``encoder`` (weights first): vitcore's for its backbones, else its leaves and class name."""
    if isinstance(encoder, vitcore.AbstractBackbone):
        return vitcore.encoder_files(encoder)
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, encoder)
    info = {"class": f"{type(encoder).__module__}.{type(encoder).__qualname__}", "config": None}
    return {vitcore.ENCODER_WEIGHTS_FILE: buffer.getvalue(), vitcore.ENCODER_CONFIG_FILE: runloop.json_bytes(info)}


def export_encoder(encoder: eqx.Module, directory: str | Path) -> Path:
    """Writes the encoder's weights and config into ``directory`` (atomically); returns the weights path."""
    runloop.write_files_atomic(directory, _files(encoder))
    return Path(directory) / vitcore.ENCODER_WEIGHTS_FILE

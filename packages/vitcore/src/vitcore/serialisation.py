"""A ViT as two files, ``encoder.eqx`` (weights) + ``encoder.json`` (config): `encoder_files` / `load_pretrained`.

The layout is the one pre-training run directories hold (``sslmethods.export``), so any run directory loads here:

    encoder.eqx   ``eqx.tree_serialise_leaves`` of the model (every array leaf, in tree order)
    encoder.json  {"class": "vitcore.ViT", "config": dataclasses.asdict(model.config)}

vitcore writes no files itself (it imports no sibling, and a file writer must be atomic): `encoder_files` returns
the two files' bytes, weights first and config last, and the caller writes them, e.g. with
``runloop.write_files_atomic`` (a config file present then means its weights were complete). Loading builds the
module abstractly (`eqx.filter_eval_shape`, no random initialisation) and reads the weights into it.

Example::

    runloop.write_files_atomic("runs/mae/", vitcore.encoder_files(model))
    model = vitcore.load_pretrained("runs/mae/")
"""

import dataclasses
import io
import json
from pathlib import Path

import equinox as eqx
import jax.random as jr

from .config import ViTConfig
from .vit import ViT

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "config_from_json", "encoder_files", "load_pretrained"]

WEIGHTS_FILE = "encoder.eqx"
CONFIG_FILE = "encoder.json"
_CLASS = "vitcore.ViT"


def encoder_files(model: ViT) -> dict[str, bytes]:
    """``{WEIGHTS_FILE: weights, CONFIG_FILE: config}`` for ``model``, in that order (write them in order)."""
    if not isinstance(model, ViT):
        raise TypeError(f"model={type(model).__name__}: expected a vitcore.ViT")
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, model)
    info = {"class": _CLASS, "config": dataclasses.asdict(model.config)}
    return {WEIGHTS_FILE: buffer.getvalue(), CONFIG_FILE: (json.dumps(info, indent=2, sort_keys=True) + "\n").encode()}


def config_from_json(info: dict, *, where: str = "encoder.json") -> ViTConfig:
    """The `ViTConfig` stored in an ``encoder.json`` dict; errors name ``where`` and the offending fields."""
    if not isinstance(info, dict) or info.get("class") != _CLASS or not isinstance(info.get("config"), dict):
        found = info.get("class") if isinstance(info, dict) else type(info).__name__
        raise ValueError(f"{where} holds class={found!r}; load_pretrained rebuilds {_CLASS!r} only")
    config = dict(info["config"])
    fields = {f.name for f in dataclasses.fields(ViTConfig)}
    unknown = sorted(set(config) - fields)
    if unknown:
        raise ValueError(f"{where}: unknown ViTConfig fields {unknown}; valid fields are {sorted(fields)}")
    if isinstance(config.get("image_size"), list):  # JSON has no tuples
        config["image_size"] = tuple(config["image_size"])
    return ViTConfig(**config)


def load_pretrained(directory: str | Path) -> ViT:
    """The `ViT` whose `encoder_files` are in ``directory`` (e.g. a pre-training run directory)."""
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist; expected a directory holding vitcore.encoder_files (encoder.eqx + "
                "encoder.json), e.g. a pre-training run"
            )
    config = config_from_json(json.loads(config_path.read_text()), where=str(config_path))
    like = eqx.filter_eval_shape(ViT, config, key=jr.key(0))
    return eqx.tree_deserialise_leaves(weights_path, like)

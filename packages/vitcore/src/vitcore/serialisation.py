"""`save_pretrained` / `load_pretrained`: a ViT as two files, ``encoder.eqx`` (weights) + ``encoder.json`` (config).

The layout is the one pre-training run directories use (``sslmethods.export``), so any run directory loads here:

    encoder.eqx   ``eqx.tree_serialise_leaves`` of the model (every array leaf, in tree order)
    encoder.json  {"class": "vitcore.ViT", "config": dataclasses.asdict(model.config)}

Both files are written to a temporary file in the target directory and renamed over the target (``os.replace``
is atomic on POSIX), so a reader or a killed writer never sees half a file. Loading builds the module abstractly
(`eqx.filter_eval_shape`, no random initialisation) and reads the weights into it.

Example::

    save_pretrained(model, "runs/mae/")
    model = load_pretrained("runs/mae/")
"""

import dataclasses
import io
import json
import os
import tempfile
from pathlib import Path

import equinox as eqx
import jax.random as jr

from .config import ViTConfig
from .vit import ViT

WEIGHTS_FILE = "encoder.eqx"
CONFIG_FILE = "encoder.json"
_CLASS = "vitcore.ViT"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_pretrained(model: ViT, directory: str | Path) -> Path:
    """Writes ``model``'s weights and config into ``directory`` (created if needed); returns the weights path."""
    if not isinstance(model, ViT):
        raise TypeError(f"model={type(model).__name__}: expected a vitcore.ViT")
    directory = Path(directory)
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, model)
    # Weights first, config last: a config file present means its weights were complete when it was written.
    _write_atomic(directory / WEIGHTS_FILE, buffer.getvalue())
    info = {"class": _CLASS, "config": dataclasses.asdict(model.config)}
    _write_atomic(directory / CONFIG_FILE, (json.dumps(info, indent=2, sort_keys=True) + "\n").encode())
    return directory / WEIGHTS_FILE


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
    for name in ("image_size", "mean", "std"):
        if isinstance(config.get(name), list):  # JSON has no tuples
            config[name] = tuple(config[name])
    # Encoders written before backbones normalised their input have no mean/std: they were trained on raw
    # [0, 1] pixels, i.e. mean 0 / std 1 (not the ImageNet default of a new ViTConfig).
    channels = config.get("in_channels", ViTConfig.in_channels)
    config.setdefault("mean", (0.0,) * channels)
    config.setdefault("std", (1.0,) * channels)
    return ViTConfig(**config)


def load_pretrained(directory: str | Path) -> ViT:
    """The `ViT` saved by `save_pretrained` (or exported by a pre-training run) in ``directory``."""
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist; expected a directory written by vitcore.save_pretrained or a "
                "pre-training run (encoder.eqx + encoder.json)"
            )
    config = config_from_json(json.loads(config_path.read_text()), where=str(config_path))
    like = eqx.filter_eval_shape(ViT, config, key=jr.key(0))
    return eqx.tree_deserialise_leaves(weights_path, like)

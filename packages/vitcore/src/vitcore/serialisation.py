"""A backbone as two files, ``encoder.eqx`` (weights) + ``encoder.json`` (config): `encoder_files` /
`load_pretrained`.

The layout is the one pre-training run directories hold (``sslmethods.pretrain.export``), so any run directory
loads here:

    encoder.eqx   ``eqx.tree_serialise_leaves`` of the model (every array leaf, in tree order)
    encoder.json  {"class": "vitcore.ViT" | "vitcore.NFNet", "config": dataclasses.asdict(model.config)}

The ``"class"`` is the backbone family's name (`vitcore.BACKBONE_FAMILIES`), so loading dispatches through the same
typed registry as `vitcore.create`. vitcore writes no files itself (it imports no sibling, and a file writer must
be atomic): `encoder_files` returns the two files' bytes, weights first and config last, and the caller writes them,
e.g. with ``runloop.write_files_atomic`` (a config file present then means its weights were complete). Loading
builds the module abstractly (`eqx.filter_eval_shape`, no random initialisation) and reads the weights into it.

Example::

    runloop.write_files_atomic("runs/mae/", vitcore.encoder_files(model))
    model = vitcore.load_pretrained("runs/mae/")
"""

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import equinox as eqx
import jax.random as jr

from .backbone import AbstractBackbone
from .factory import BACKBONE_FAMILIES, family_of

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "config_from_json", "encoder_files", "load_pretrained"]

WEIGHTS_FILE = "encoder.eqx"
CONFIG_FILE = "encoder.json"


def encoder_files(model: AbstractBackbone) -> dict[str, bytes]:
    """``{WEIGHTS_FILE: weights, CONFIG_FILE: config}`` for ``model``, in that order (write them in order)."""
    if not isinstance(model, AbstractBackbone):
        raise TypeError(f"model={type(model).__name__}: expected a vitcore backbone (ViT or NFNet)")
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, model)
    info = {"class": family_of(model.config).name, "config": dataclasses.asdict(model.config)}
    return {WEIGHTS_FILE: buffer.getvalue(), CONFIG_FILE: (json.dumps(info, indent=2, sort_keys=True) + "\n").encode()}


def _tuples(value: Any) -> Any:
    """JSON has no tuples; config fields hold tuples (hashable, static), never lists."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def config_from_json(info: dict, *, where: str = "encoder.json") -> Any:
    """The backbone config stored in an ``encoder.json`` dict; errors name ``where`` and the offending fields."""
    names = [f.name for f in BACKBONE_FAMILIES]
    found = info.get("class") if isinstance(info, dict) else type(info).__name__
    family = next((f for f in BACKBONE_FAMILIES if f.name == found), None)
    if family is None or not isinstance(info.get("config"), dict):
        raise ValueError(f"{where} holds class={found!r}; load_pretrained rebuilds one of {names}")
    config = {name: _tuples(value) for name, value in info["config"].items()}
    fields = {f.name for f in dataclasses.fields(family.config_class)}
    unknown = sorted(set(config) - fields)
    if unknown:
        raise ValueError(
            f"{where}: unknown {family.config_class.__name__} fields {unknown}; valid fields are {sorted(fields)}"
        )
    # Encoders written before backbones normalised their input have no mean/std: they were trained on raw
    # [0, 1] pixels, i.e. mean 0 / std 1 (not the ImageNet default of a new config).
    channels = config.get("in_channels", family.config_class.in_channels)
    config.setdefault("mean", (0.0,) * channels)
    config.setdefault("std", (1.0,) * channels)
    return family.config_class(**config)


def load_pretrained(directory: str | Path) -> AbstractBackbone:
    """The backbone whose `encoder_files` are in ``directory`` (e.g. a pre-training run directory). A file that is
    missing is a FileNotFoundError; one that is not valid (corrupt, truncated, another model's weights) is a
    ValueError naming it and why."""
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} does not exist; expected a directory holding vitcore.encoder_files (encoder.eqx + "
                "encoder.json), e.g. a pre-training run"
            )
    try:
        info = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_path} is not a valid encoder config (not JSON: {error})") from None
    config = config_from_json(info, where=str(config_path))
    like = eqx.filter_eval_shape(family_of(config).model_class, config, key=jr.key(0))
    try:
        return eqx.tree_deserialise_leaves(weights_path, like)
    except Exception as error:  # noqa: BLE001  (equinox/numpy internals: say what is wrong with which file)
        raise ValueError(f"{weights_path} is not a valid encoder weights file for the model {config_path} "
                         f"describes ({_unreadable_reason(error)})") from error


def _unreadable_reason(error: BaseException) -> str:
    """The root of equinox's error chain, in words (numpy's own words mislead: "allow_pickle" for bad bytes)."""
    root = error
    while (root.__cause__ or root.__context__) is not None:
        root = root.__cause__ or root.__context__
    text = " ".join(str(root).split())
    if isinstance(root, EOFError) or "Failed to read all data" in text:
        return "the file ends early: truncated?"
    if "pickled" in text:
        return "it does not hold the arrays equinox writes: corrupt, or not an encoder.eqx"
    if "changed shape" in text:
        return f"the weights are of another model: {text[:300]}"
    return f"{type(root).__name__}: {text[:300]}"

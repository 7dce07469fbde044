"""A layer-probe study of one encoder: every layer probed for each seed, ``result.json`` and ``command.txt``.

``run_layer_probe(spec, encoder=..., out_dir=...)`` probes every layer of the encoder for each seed (the probe's
initialisation, and a scratch encoder's) and writes ``out_dir/result.json`` last, atomically: ``seeds``,
``layers`` (per seed, every layer's `LayerScore`: validation and test mIoU), ``dataset``, ``image_size`` and
``val_fraction``. Seeds already in ``result.json`` are kept, not probed again, so asking for more seeds later
reuses the finished ones. ``out_dir/command.txt`` is the ``flopwise-probe-layers`` command that reruns it.
``read_layer_probe(out_dir)`` reads ``result.json`` back, checked (results written before the validation split
have no ``val_fraction`` and no validation scores, and still read).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import flopdata
import jax
import runloop

from ..encoders import load_encoder
from ..segmentation.transfer_data import describe_segmentation_dataset
from ..transfer_run import encoder_source
from ..transfer_study import RESULT_FILE
from .layer_probe import LayerScore, probe_dataset
from .spec import COMMAND_FILE, LayerProbeSpec

__all__ = ["RESULT_FILE", "read_layer_probe", "run_layer_probe"]


def run_layer_probe(spec: LayerProbeSpec, *, encoder: str, out_dir: str | Path, model: str | None = None,
                    seeds: Sequence[int] | None = None, data_dir: str | Path | None = None) -> dict[str, Any]:
    """Probes ``encoder`` (a pre-training run directory, a timm weights file or "scratch" of preset ``model``) as
    ``spec`` says for ``seeds`` (default 0..spec.seeds-1) in ``out_dir``; returns ``result.json``'s content
    (module docstring). ``spec.dataset`` is resolved under ``data_dir`` (`flopdata.resolve`)."""
    spec.validate()
    seeds = list(range(spec.seeds)) if seeds is None else [int(s) for s in seeds]
    data_dir = Path(data_dir) if data_dir is not None else flopdata.default_data_dir()
    info = describe_segmentation_dataset(flopdata.resolve(spec.dataset, data_dir=data_dir))
    out_dir = Path(out_dir)
    path = out_dir / RESULT_FILE
    old = read_layer_probe(out_dir) or {"seeds": [], "layers": []}
    done = dict(zip(old["seeds"], old["layers"], strict=True))
    for seed in seeds:
        if seed in done:
            continue
        key = jax.random.key(seed)
        backbone, _ = load_encoder(encoder, model=model, key=key, image_size=spec.image_size)
        scores = probe_dataset(backbone, info.directory, num_classes=info.num_classes, image_size=spec.image_size,
                               train_split=info.train_split, eval_split=info.eval_split,
                               train_examples=spec.train_examples, eval_examples=spec.eval_examples,
                               key=jax.random.fold_in(key, 1), config=spec.probe_config,
                               val_fraction=spec.val_fraction)
        done[seed] = [dataclasses.asdict(s) for s in scores]
    ordered = sorted(done)
    record = {"seeds": ordered, "layers": [done[s] for s in ordered], "dataset": spec.dataset,
              "image_size": spec.image_size, "val_fraction": spec.val_fraction}
    command = spec.command(encoder=encoder_source(encoder), out_dir=str(out_dir.resolve()), model=model,
                           data_dir=str(data_dir.resolve()), seeds=ordered)
    runloop.write_bytes_atomic(out_dir / COMMAND_FILE, (command + "\n").encode())
    runloop.write_json_atomic(path, record)
    return record


def read_layer_probe(out_dir: str | Path) -> dict[str, Any] | None:
    """The ``out_dir/result.json`` of a layer-probe study (module docstring; None when there is none yet);
    ValueError naming the file when it is not one: ``seeds`` (distinct ints) and ``layers`` (per seed, the same
    number of `LayerScore` records) must match."""
    path = Path(out_dir) / RESULT_FILE
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text())
        _check_result(result)
    except (ValueError, TypeError) as error:  # JSONDecodeError is a ValueError
        raise ValueError(f"{path} is not a valid layer-probe result ({error})") from None
    return result


def _check_result(result: Any) -> None:
    if not isinstance(result, dict) or not {"seeds", "layers"} <= set(result):
        raise ValueError("expected a JSON object with 'seeds' and 'layers'")
    seeds, layers = result["seeds"], result["layers"]
    if not isinstance(seeds, list) or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds={seeds!r}: expected a list of distinct ints")
    if not isinstance(layers, list) or len(layers) != len(seeds):
        raise ValueError(f"layers: expected one list of layers per seed ({len(seeds)})")
    for seed, per_seed in zip(seeds, layers, strict=True):
        if not isinstance(per_seed, list) or not per_seed or len(per_seed) != len(layers[0]):
            raise ValueError(f"layers of seed {seed}: expected {len(layers[0]) or 'some'} layers, as every seed")
        for layer in per_seed:
            if not isinstance(layer, dict):
                raise ValueError(f"layers of seed {seed}: expected objects, found {type(layer).__name__}")
            LayerScore(**layer)  # TypeError naming a missing or unknown field

"""A layer-probe study of one encoder: every layer probed for each seed, ``result.json`` and ``command.txt``.

``run_layer_probe(spec, encoder=..., out_dir=...)`` probes every layer of the encoder for each seed (the probe's
initialisation, and a scratch encoder's) and writes ``out_dir/result.json`` last, atomically: ``seeds``,
``layers`` (per seed, every layer's `LayerScore`: validation and test mIoU), ``dataset``, ``image_size`` and
``val_fraction``. Seeds already in ``result.json`` are kept, not probed again, so asking for more seeds later
reuses the finished ones. ``out_dir/command.txt`` is the ``flopwise-probe-layers`` command that reruns it.
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
from .layer_probe import probe_dataset
from .spec import COMMAND_FILE, LayerProbeSpec

__all__ = ["RESULT_FILE", "run_layer_probe"]


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
    old = json.loads(path.read_text()) if path.is_file() else {"seeds": [], "layers": []}
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

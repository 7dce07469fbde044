"""Every option of a layer-wise probe study, declared once: `LayerProbeSpec`.

`LayerProbeSpec` is what ``flopwise-probe-layers`` parses (its flags are generated from the fields:
`flopcli.add_spec_flags`) and what a sweep's layer-probe task holds (its canonical JSON, less the fields that only
say how it runs, is hashed into the task's id): linear segmentation probes on every layer of a frozen encoder
(`segtransfer.probe.layer_probe`), the layer-wise transfer of Abnar et al. 2021. Images at ``image_size`` (short
side, centre crop); probes fitted on the first ``train_examples`` of the training split less the
``val_fraction`` carved from them to choose the layer, and scored on the first ``eval_examples`` of the
evaluation split; ``steps`` of full-batch Adam at ``lr`` with ``weight_decay`` (`ProbeConfig`); features
extracted ``batch`` images at a time; ``seeds`` probes. ``run_layer_probe`` (`segtransfer.probe.study`) runs
one and writes ``command.txt`` (`COMMAND_FILE`), the command that reruns it.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Sequence
from pathlib import Path

import flopcli

from .layer_probe import VAL_FRACTION, ProbeConfig

__all__ = ["COMMAND", "COMMAND_FILE", "HOW_FIELDS", "LayerProbeSpec"]

COMMAND = "flopwise-probe-layers"
COMMAND_FILE = "command.txt"  # in a study's folder: the command that reruns it
# How a study runs, never what it computes: not part of a sweep task's identity.
HOW_FIELDS = ("seeds", "batch")

_field = flopcli.spec_field


@dataclasses.dataclass(frozen=True)
class LayerProbeSpec:
    """Probing every layer of an encoder for segmentation of ``dataset`` (module docstring). ``validate()``
    checks every field (construction calls it); errors start with the field's name."""

    dataset: str = _field("ade20k", "the segmentation dataset (flopdata.resolve: a name such as ade20k or "
                                    "fmnist_scenes)")
    image_size: int = _field(512, "image size in pixels (short side resized, centre crop)", flopcli.positive_int)
    train_examples: int = _field(1000, "training examples the probes see (the validation split is carved from "
                                       "them)", flopcli.positive_int)
    eval_examples: int = _field(500, "examples of the evaluation split the probes are scored on",
                                flopcli.positive_int)
    steps: int = _field(300, "full-batch Adam steps per probe", flopcli.positive_int)
    lr: float = _field(0.05, "the probes' learning rate", flopcli.positive_float)
    weight_decay: float = _field(1e-4, "the probes' weight decay", flopcli.non_negative_float)
    batch: int = _field(64, "images per feature-extraction batch", flopcli.positive_int)
    seeds: int = _field(1, "probe seeds 0..N-1 (a scratch encoder's initialisation too)", flopcli.positive_int)
    val_fraction: float = _field(VAL_FRACTION, "fraction of the training examples held out to choose the layer",
                                 flopcli.fraction)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """ValueError starting with the field's name for the first field that is wrong."""
        if isinstance(self.val_fraction, bool) or not isinstance(self.val_fraction, int | float) or not (
                0.0 < self.val_fraction < 1.0):
            raise ValueError(f"val_fraction={self.val_fraction!r}: expected 0 < val_fraction < 1")
        for name in ("image_size", "train_examples", "eval_examples", "steps", "batch", "seeds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: expected >= 1")
        for name in ("lr", "weight_decay"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int | float):
                raise ValueError(f"{name}={getattr(self, name)!r}: expected a number")
        if not self.lr > 0 or not self.weight_decay >= 0:
            raise ValueError(f"lr={self.lr!r}, weight_decay={self.weight_decay!r}: expected lr > 0, weight_decay >= 0")
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError(f"dataset={self.dataset!r}: expected a dataset name or directory")

    @property
    def probe_config(self) -> ProbeConfig:
        return ProbeConfig(steps=self.steps, lr=self.lr, weight_decay=self.weight_decay, batch_size=self.batch)

    def command(self, *, encoder: str, out_dir: str | Path, model: str | None, data_dir: str | None,
                seeds: Sequence[int] | None = None) -> str:
        """The ``flopwise-probe-layers`` command that runs this study (every field spelled out). ``seeds``: the
        seeds run (0..N-1; the command runs 0..max)."""
        spec = self if not seeds else dataclasses.replace(self, seeds=max(seeds) + 1)
        words = [COMMAND, "--encoder", encoder, *(["--model", model] if model else []), "--out", str(out_dir),
                 *(["--data-dir", data_dir] if data_dir else []), *flopcli.spec_to_flags(spec)]
        return shlex.join(words)

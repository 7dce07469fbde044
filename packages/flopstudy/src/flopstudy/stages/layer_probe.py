"""The layer-probe task's one adapter into segtransfer: linear segmentation probes on every layer of a frozen
encoder (`segtransfer.probe.layer_probe`), the layer-wise transfer of Abnar et al. 2021, as a sweep task.

For each seed (the probe's initialisation; and a scratch encoder's) it writes every layer's validation and test
mIoU into ``result.json``. The layer is chosen on validation data only: a split carved from the training
examples (``val_fraction`` of them, `segtransfer.probe.layer_probe.carve_validation`), the layer with the highest
validation mIoU averaged over the seeds. The table's score is that layer's *test* mIoU for each seed, with extra
columns ``best_layer`` (the chosen layer), ``best_depth`` (its relative depth), ``num_layers``, ``layer_mious``
and ``layer_val_mious`` (every layer's mean test and validation mIoU, space-separated %) and ``layer_choice``
("validation"; "test" for a result written before the validation split, whose layer was the best on test),
which the report draws by layer and against upstream accuracy.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import jax
import segtransfer as st
from runloop import write_json_atomic
from segtransfer.probe.layer_probe import ProbeConfig, probe_dataset

from ..results.finetune_outputs import RESULT_FILE
from ..specs.task_protocol import TaskResult
from .dataset_task import DatasetTask
from .datasets import resolve_dataset

__all__ = ["LayerProbeSettings", "LayerProbeTask"]


@dataclasses.dataclass(frozen=True)
class LayerProbeSettings:
    """Probing every layer for segmentation of ``dataset``: images at ``image_size`` (short side, centre crop),
    probes fitted on the first ``train_examples`` of the training split less the ``val_fraction`` carved from them
    to choose the layer, and scored on the first ``eval_examples`` of the evaluation split; ``steps`` of
    full-batch Adam at ``lr`` with ``weight_decay`` (`segtransfer.probe.layer_probe.ProbeConfig`); features extracted
    ``batch`` images at a time; ``seeds`` probes."""

    dataset: str = "ade20k"
    image_size: int = 512
    train_examples: int = 1000
    eval_examples: int = 500
    steps: int = 300
    lr: float = 0.05
    weight_decay: float = 1e-4
    batch: int = 64
    seeds: int = 1
    val_fraction: float = 0.2

    def __post_init__(self) -> None:
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction={self.val_fraction!r}: expected 0 < val_fraction < 1")
        for name in ("image_size", "train_examples", "eval_examples", "steps", "batch", "seeds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r}: expected >= 1")
        if not self.lr > 0 or not self.weight_decay >= 0:
            raise ValueError(f"lr={self.lr!r}, weight_decay={self.weight_decay!r}: expected lr > 0, weight_decay >= 0")


class LayerProbeTask(DatasetTask):
    kind: ClassVar[str] = "layer_probe"
    noun: ClassVar[str] = "layer probe"
    result_name: ClassVar[str] = "layer-probe"
    score_metric: ClassVar[str] = "mIoU"
    settings_type: ClassVar[type] = LayerProbeSettings
    how_fields: ClassVar[tuple[str, ...]] = ("seeds", "batch")

    def run(self, settings: LayerProbeSettings, *, encoder: str, model: str, out_dir: Path, seeds: Sequence[int],
            data_dir: str | None) -> None:
        info = st.describe_segmentation_dataset(resolve_dataset(settings.dataset, data_dir=data_dir))
        config = ProbeConfig(steps=settings.steps, lr=settings.lr, weight_decay=settings.weight_decay,
                             batch_size=settings.batch)
        path = Path(out_dir) / RESULT_FILE
        old = json.loads(path.read_text()) if path.is_file() else {"seeds": [], "layers": []}
        done = dict(zip(old["seeds"], old["layers"], strict=True))
        for seed in seeds:
            if seed in done:
                continue
            key = jax.random.key(seed)
            backbone, _ = st.load_encoder(encoder, model=model, key=key, image_size=settings.image_size)
            scores = probe_dataset(backbone, info.directory, num_classes=info.num_classes,
                                   image_size=settings.image_size, train_split=info.train_split,
                                   eval_split=info.eval_split, train_examples=settings.train_examples,
                                   eval_examples=settings.eval_examples, key=jax.random.fold_in(key, 1), config=config,
                                   val_fraction=settings.val_fraction)
            done[seed] = [dataclasses.asdict(s) for s in scores]
        ordered = sorted(done)
        write_json_atomic(path, {"seeds": ordered, "layers": [done[s] for s in ordered],
                                 "dataset": settings.dataset, "image_size": settings.image_size,
                                 "val_fraction": settings.val_fraction})

    def parse_result(self, result: dict[str, Any]) -> TaskResult:
        per_seed = dict(zip((int(s) for s in result["seeds"]), result["layers"], strict=True))
        depths = [float(layer["depth"]) for layer in per_seed[min(per_seed)]]
        test = {seed: [100.0 * float(layer["miou"]) for layer in layers] for seed, layers in per_seed.items()}
        mean_test = _mean(test.values())
        extras = {}
        if all(layer.get("val_miou") is not None for layers in per_seed.values() for layer in layers):
            val = _mean([100.0 * float(layer["val_miou"]) for layer in layers] for layers in per_seed.values())
            chosen, choice = max(range(len(val)), key=lambda i: (val[i], -i)), "validation"
            extras["layer_val_mious"] = " ".join(f"{v:.3f}" for v in val)
        else:  # written before the validation split: its best layer was chosen on the test split
            chosen, choice = max(range(len(mean_test)), key=mean_test.__getitem__), "test"
        return TaskResult({seed: values[chosen] for seed, values in test.items()}, None, None,
                          {"best_layer": chosen, "best_depth": depths[chosen], "num_layers": len(mean_test),
                           "layer_mious": " ".join(f"{v:.3f}" for v in mean_test), **extras, "layer_choice": choice})


def _mean(rows: Any) -> list[float]:
    """The element-wise mean of equally long lists."""
    rows = list(rows)
    return [sum(values) / len(values) for values in zip(*rows, strict=True)]

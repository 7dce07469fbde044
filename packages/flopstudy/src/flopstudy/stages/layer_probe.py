"""The layer-probe task's one adapter into segtransfer: linear segmentation probes on every layer of a frozen
encoder (`segtransfer.probe.layer_probe`), the layer-wise transfer of Abnar et al. 2021, as a sweep task.

A sweep's layer-probe settings are a `segtransfer.LayerProbeSpec`, unchanged (``config.tasks.layer_probe`` holds
its fields; the task's id hashes their canonical JSON less the fields that only say how it runs); the task calls
``segtransfer.probe.study.run_layer_probe`` in-process, which also writes the ``flopwise-probe-layers`` command
that reruns the task (``command.txt``). For each seed (the probe's initialisation; and a scratch encoder's) it
writes every layer's validation and test mIoU into ``result.json``. The layer is chosen on validation data
only: a split carved from the training examples (``val_fraction`` of them,
`segtransfer.probe.layer_probe.carve_validation`), the layer with the highest validation mIoU averaged over the
seeds. The table's score is that layer's *test* mIoU for each seed, with extra columns ``best_layer`` (the
chosen layer), ``best_depth`` (its relative depth), ``num_layers``, ``layer_mious`` and ``layer_val_mious``
(every layer's mean test and validation mIoU, space-separated %) and ``layer_choice`` ("validation"; "test" for
a result written before the validation split, whose layer was the best on test), which the report draws by
layer and against upstream accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from segtransfer.probe.spec import HOW_FIELDS, LayerProbeSpec
from segtransfer.probe.study import run_layer_probe

from ..specs.task_protocol import TaskResult
from .dataset_task import DatasetTask

__all__ = ["LayerProbeTask"]


class LayerProbeTask(DatasetTask):
    kind: ClassVar[str] = "layer_probe"
    noun: ClassVar[str] = "layer probe"
    result_name: ClassVar[str] = "layer-probe"
    score_metric: ClassVar[str] = "mIoU"
    settings_type: ClassVar[type] = LayerProbeSpec
    how_fields: ClassVar[tuple[str, ...]] = HOW_FIELDS

    def run(self, settings: LayerProbeSpec, *, encoder: str, model: str, out_dir: Path, seeds: Sequence[int],
            data_dir: str | None) -> None:
        run_layer_probe(settings, encoder=encoder, out_dir=out_dir, model=model, seeds=list(seeds), data_dir=data_dir)

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

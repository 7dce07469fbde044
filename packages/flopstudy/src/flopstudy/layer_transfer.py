"""Layer-wise transfer from the results table: the layer-probe task's per-layer scores of every run.

Abnar et al. 2021 relate the saturation of transfer to how representations change through the layers: the best
layer for a downstream task moves as upstream accuracy grows. The layer-probe task (`stages.layer_probe`) writes
every layer's mIoU into the table (``layer_mious``, ``best_layer``, ``best_depth``); `layer_curves` reads them
back, one `LayerCurve` per (task, method, variant, backbone, pre-training dataset, budget), and `best_layer_trend`
fits how the best layer's relative depth moves with upstream accuracy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from .results import ResultRow

__all__ = ["LayerCurve", "best_layer_trend", "layer_curves"]


@dataclasses.dataclass(frozen=True)
class LayerCurve:
    """The probe's mIoU (%) at each layer of one run (mean over probe seeds); ``depths`` are relative
    ((index + 1) / layers), so backbones of different depth share an axis. ``upstream_accuracy`` (%) is None
    for a scratch encoder."""

    task: str
    method: str
    variant: str
    backbone: str
    pretrain_dataset: str
    pretrain_flops: float
    upstream_accuracy: float | None
    mious: tuple[float, ...]

    @property
    def depths(self) -> tuple[float, ...]:
        return tuple((i + 1) / len(self.mious) for i in range(len(self.mious)))

    @property
    def best_layer(self) -> int:
        return int(np.argmax(self.mious))

    @property
    def best_depth(self) -> float:
        return self.depths[self.best_layer]

    @property
    def label(self) -> str:
        variant = f" ({self.variant})" if self.variant else ""
        return f"{self.method}{variant} {self.backbone}"


def layer_curves(rows: Sequence[ResultRow]) -> list[LayerCurve]:
    """One `LayerCurve` per finished run with per-layer scores (the ``layer_mious`` column), by task and FLOPs."""
    seen: dict[tuple, LayerCurve] = {}
    for r in rows:
        text = r.extras.get("layer_mious")
        if not r.done or not isinstance(text, str | float) or r.pretrain_flops is None:
            continue
        mious = tuple(float(v) for v in str(text).split())
        key = (r.task, r.method, r.variant, r.backbone, r.pretrain_dataset, r.pretrain_flops)
        seen.setdefault(key, LayerCurve(*key, r.upstream_accuracy, mious))
    return sorted(seen.values(), key=lambda c: (c.task, c.label, c.pretrain_flops))


def best_layer_trend(curves: Sequence[LayerCurve]) -> tuple[float, float] | None:
    """Least-squares line ``best_depth = a + b * upstream_accuracy`` over the curves with an upstream accuracy
    (None with fewer than 2 distinct accuracies): ``(a, b)``; b > 0 means the best layer moves deeper as
    upstream accuracy grows."""
    points = [(c.upstream_accuracy, c.best_depth) for c in curves if c.upstream_accuracy is not None]
    if len({x for x, _ in points}) < 2:
        return None
    x, y = (np.array(v, np.float64) for v in zip(*points, strict=True))
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)

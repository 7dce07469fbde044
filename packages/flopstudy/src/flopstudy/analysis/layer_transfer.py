"""Layer-wise transfer from the results table: the layer-probe task's per-layer scores of every run.

Abnar et al. 2021 relate the saturation of transfer to how representations change through the layers: the best
layer for a downstream task moves as upstream accuracy grows. The layer-probe task (`stages.layer_probe`) writes
every layer's test and validation mIoU into the table (``layer_mious``, ``layer_val_mious``); `layer_curves` reads
them back, one `LayerCurve` per (task, method, variant, backbone, pre-training dataset, budget), and
`best_layer_trend` fits how the best layer's relative depth moves with upstream accuracy. The best layer is the
one with the highest *validation* mIoU (a split carved from the probe's training data), and its *test* mIoU is
the score; rows written before the validation split have none, so theirs is the best on test (``choice`` says
which).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ..results.rows import ResultRow

__all__ = ["LayerCurve", "best_layer_trend", "layer_curves"]


@dataclasses.dataclass(frozen=True)
class LayerCurve:
    """The probe's test mIoU (%) at each layer of one run (mean over probe seeds) and its validation mIoU
    (``val_mious``; None for a row written before the validation split); ``depths`` are relative
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
    val_mious: tuple[float, ...] | None = None

    @property
    def choice(self) -> str:
        """Where the best layer was chosen: "validation", or "test" for a row without validation scores."""
        return "test" if self.val_mious is None else "validation"

    @property
    def depths(self) -> tuple[float, ...]:
        return tuple((i + 1) / len(self.mious) for i in range(len(self.mious)))

    @property
    def best_layer(self) -> int:
        """The layer with the highest validation mIoU (the shallowest on a tie; the test mIoU without one)."""
        return int(np.argmax(self.mious if self.val_mious is None else self.val_mious))

    @property
    def score(self) -> float:
        """The best layer's test mIoU: the run's reported score."""
        return self.mious[self.best_layer]

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
        val_text = r.extras.get("layer_val_mious")
        val = tuple(float(v) for v in str(val_text).split()) if isinstance(val_text, str | float) else None
        if val is not None and len(val) != len(mious):
            val = None
        key = (r.task, r.method, r.variant, r.backbone, r.pretrain_dataset, r.pretrain_flops)
        seen.setdefault(key, LayerCurve(*key, r.upstream_accuracy, mious, val))
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

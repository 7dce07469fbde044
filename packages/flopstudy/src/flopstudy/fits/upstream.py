"""Upstream loss vs pre-training FLOPs per backbone family, and the compute-optimal (size, steps) frontier.

Smith et al. 2023 ("ConvNets Match Vision Transformers at Scale") find held-out loss log-log linear in compute
along the compute-optimal frontier, with model size and training length growing at about the same rate. From a
grid of sizes x budgets (pre-training runs with ``upstream_loss``: the held-out loss,
`flopstudy.results.upstream_columns`; runs that recorded none fall back to their last training batch's loss,
and the law's ``note`` says how many), per (family, method, variant, dataset):

- the frontier: the runs no cheaper-or-equal run beats on loss (`flopmeter.pareto_front` on (FLOPs, -loss));
- a power law of loss vs FLOPs fitted on the frontier (`fit_scaling_law`, R^2, bootstrap interval);
- power laws of the frontier's parameter count and steps vs FLOPs: their exponents say how size and length
  should grow with compute (each needs 2 distinct values).

A backbone's family is its preset name up to the first "-" ("vit-b16" -> "vit", "nfnet-f0" -> "nfnet").
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from flopmeter import pareto_front

from ..results.rows import ResultRow
from ..results.upstream_columns import LOSS_HELDOUT
from .scaling import ScalingFit, fit_scaling_law

__all__ = ["FrontierPoint", "UpstreamLaw", "backbone_family", "compute_optimal_frontier", "fit_upstream_laws"]


def backbone_family(backbone: str) -> str:
    """The preset name up to the first "-" (the whole name if it has none)."""
    return backbone.split("-", 1)[0]


@dataclasses.dataclass(frozen=True)
class FrontierPoint:
    """One pre-training run: its backbone (and parameter count), steps, FLOPs and final upstream loss, with where
    the loss comes from (``loss_source``: "heldout", "last batch", or None where the table does not say)."""

    backbone: str
    params: int | None
    steps: int | None
    flops: float
    loss: float
    loss_source: str | None = None

    @property
    def heldout(self) -> bool:
        return self.loss_source == LOSS_HELDOUT


def compute_optimal_frontier(points: Sequence[FrontierPoint]) -> list[FrontierPoint]:
    """The points with the lowest loss for their compute (non-dominated in (FLOPs, loss)), by FLOPs."""
    if not points:
        return []
    return [points[i] for i in pareto_front([p.flops for p in points], [-p.loss for p in points])]


@dataclasses.dataclass(frozen=True)
class UpstreamLaw:
    """Fits for one (family, method, variant, pre-training dataset); a fit is None with the reason in ``note``."""

    family: str
    method: str
    variant: str
    pretrain_dataset: str
    points: tuple[FrontierPoint, ...]
    frontier: tuple[FrontierPoint, ...]
    loss_fit: ScalingFit | None
    params_fit: ScalingFit | None
    steps_fit: ScalingFit | None
    note: str

    @property
    def label(self) -> str:
        variant = f" ({self.variant})" if self.variant else ""
        return f"{self.family} {self.method}{variant} on {self.pretrain_dataset or '-'}"

    def to_json(self) -> dict:
        fits = {name: None if fit is None else fit.to_json()
                for name, fit in (("loss", self.loss_fit), ("params", self.params_fit), ("steps", self.steps_fit))}
        return {"family": self.family, "method": self.method, "variant": self.variant,
                "pretrain_dataset": self.pretrain_dataset, "frontier": [dataclasses.asdict(p) for p in self.frontier],
                "fits": fits, "note": self.note}


def _runs(rows: Sequence[ResultRow]) -> dict[tuple[str, str, str, str], list[FrontierPoint]]:
    """Unique pre-training runs with a loss and FLOPs (several tasks/seeds share one run), grouped."""
    seen, groups = set(), defaultdict(list)
    for r in rows:
        if r.upstream_loss is None or not r.pretrain_flops:
            continue
        run = (r.method, r.variant, r.backbone, r.pretrain_dataset, r.pretrain_steps, r.pretrain_flops)
        if run in seen:
            continue
        seen.add(run)
        groups[(backbone_family(r.backbone), r.method, r.variant, r.pretrain_dataset)].append(
            FrontierPoint(r.backbone, r.params, r.pretrain_steps, r.pretrain_flops, r.upstream_loss,
                          r.upstream_loss_source))
    return groups


def _maybe_fit(x: list[float], y: list[float], n_boot: int, seed: int) -> ScalingFit | None:
    x_arr, y_arr = np.array(x, np.float64), np.array(y, np.float64)
    if len(set(x)) < 2 or len(set(y)) < 2 or np.any(y_arr <= 0):
        return None
    return fit_scaling_law(x_arr, y_arr, n_boot=n_boot, seed=seed)


def fit_upstream_laws(rows: Sequence[ResultRow], *, n_boot: int = 1000, seed: int = 0) -> list[UpstreamLaw]:
    """One `UpstreamLaw` per (family, method, variant, dataset) that has runs with an upstream loss."""
    laws = []
    for (family, method, variant, dataset), points in sorted(_runs(rows).items()):
        frontier = compute_optimal_frontier(points)
        notes = []
        if not_heldout := sum(not p.heldout for p in points):
            notes.append(f"{not_heldout} of {len(points)} run(s) recorded no held-out loss: their upstream loss is "
                         "the last training batch's")
        if any(p.loss <= 0 for p in frontier):
            notes.append("a frontier loss is <= 0: no log-log fit")
        loss_fit = _maybe_fit([p.flops for p in frontier], [p.loss for p in frontier], n_boot, seed)
        if loss_fit is None and not notes:
            notes.append(f"{len(frontier)} frontier point(s) with distinct FLOPs: need 2 for a loss law")
        with_params = [p for p in frontier if p.params is not None]
        params_fit = _maybe_fit([p.flops for p in with_params], [float(p.params) for p in with_params], n_boot,
                                seed)
        with_steps = [p for p in frontier if p.steps]
        steps_fit = _maybe_fit([p.flops for p in with_steps], [float(p.steps) for p in with_steps], n_boot, seed)
        if params_fit is None:
            notes.append("no size exponent: the frontier needs 2 distinct parameter counts")
        laws.append(UpstreamLaw(family, method, variant, dataset, tuple(points), tuple(frontier), loss_fit,
                                params_fit, steps_fit, "; ".join(notes)))
    return laws

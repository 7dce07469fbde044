"""MAE pre-pretraining (Singh et al. 2023) from a sweep's runs: second-stage convergence and transfer, with and
without the first stage, per second-stage FLOP and per total FLOP.

A chain's second stage has ``prepretrain_method`` / ``prepretrain_flops`` in the table; its plain counterpart is
the run of the same method, backbone and dataset without them. `chain_series` groups them into one `ChainSeries`
per first-stage budget (0 = no first stage): the downstream scores at each second-stage budget, and the
second stage's training-loss curve (read from its run folder's ``pretrain/metrics.jsonl``, the run with the most
steps), each placed both on the second-stage FLOP axis and on the total FLOP axis (shifted by the first stage).
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..results.rows import ResultRow

__all__ = ["ChainSeries", "chain_series", "loss_curve"]


@dataclasses.dataclass(frozen=True)
class ChainSeries:
    """One (method, backbone, pre-training dataset) with one first-stage setting: ``first_method`` ('' for
    none), its FLOPs ``first_flops`` (0 for none). ``scores[task]``: (second-stage FLOPs, median score %) by
    budget; ``loss``: (second-stage FLOPs, training loss) of the longest second stage (empty if unreadable)."""

    method: str
    backbone: str
    pretrain_dataset: str
    first_method: str
    first_flops: float
    scores: dict[str, tuple[tuple[float, float], ...]]
    loss: tuple[tuple[float, float], ...]

    @property
    def label(self) -> str:
        if not self.first_method:
            return f"{self.method}, no first stage"
        return f"{self.method} after {self.first_method} ({self.first_flops:.2g} FLOPs)"


def loss_curve(run_dir: str | Path, flops_per_step: float) -> tuple[tuple[float, float], ...]:
    """(FLOPs so far, loss) at every logged step of the pre-training in ``run_dir`` (``pretrain/metrics.jsonl``);
    empty when the file is missing."""
    path = Path(run_dir) / "pretrain" / "metrics.jsonl"
    if not path.is_file():
        return ()
    points = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if "loss" in record and "step" in record:
            points.append((float(record["step"]) * flops_per_step, float(record["loss"])))
    return tuple(points)


def chain_series(rows: Sequence[ResultRow]) -> list[ChainSeries]:
    """Every (method, backbone, dataset) that has a chain, as one series per first-stage budget plus the plain
    runs (``first_flops`` 0). Rows need ``flops_per_step``; those without are left out."""
    chained = {(r.method, r.backbone, r.pretrain_dataset) for r in rows if r.prepretrain_method}
    groups: dict[tuple, list[ResultRow]] = defaultdict(list)
    for r in rows:
        group = (r.method, r.backbone, r.pretrain_dataset)
        if group in chained and r.done and r.flops_per_step and r.pretrain_steps:
            if r.prepretrain_method and r.prepretrain_flops is None:
                continue  # the first stage's FLOPs are not known yet
            groups[(*group, r.prepretrain_method or "", r.prepretrain_flops or 0.0)].append(r)
    out = []
    for (method, backbone, dataset, first, first_flops), members in sorted(groups.items()):
        by_task: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in members:
            by_task[r.task][r.flops_per_step * r.pretrain_steps].append(float(r.score))
        scores = {task: tuple((x, float(np.median(v))) for x, v in sorted(points.items()))
                  for task, points in by_task.items()}
        longest = max(members, key=lambda r: r.pretrain_steps)
        loss = loss_curve(longest.run_dir, longest.flops_per_step) if longest.run_dir else ()
        out.append(ChainSeries(method, backbone, dataset, first, first_flops, scores, loss))
    return out

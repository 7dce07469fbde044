"""Verdicts: does a chosen pre-trained point beat training from scratch? Tested on confirm seeds only.

    verdicts = compare_to_scratch(rows, alpha=0.05)   # one `Verdict` per compared point, Holm over all of them

A compared point is a (method, variant, backbone, pre-training dataset, FLOPs, task) with at least `MIN_SEEDS`
finished confirm seeds (`ResultRow.role`); a sweep gives those only to each group's best point, chosen on explore
seeds, so the seed that chose a point never tests it. Its baseline is the scratch run of the same backbone and task
(all its seeds are confirm seeds), with at least `MIN_SEEDS` too. The test (`TEST`): Welch's t-test, two-sided
(`scipy.stats.ttest_ind(equal_var=False)`), effect = difference of the means with its 95% Welch interval; p-values
are Holm-adjusted over every point compared in one report (`statsmodels.stats.multitest.multipletests`), and a point
is ``significant`` when its adjusted p is below ``alpha``.

Which variance (`Verdict.variance`): with one pre-trained encoder the observations are its confirm seeds
(``"finetune_seeds"``): the verdict is about that encoder, not about a new pre-training run of the same recipe.
Where the point was pre-trained more than once (``config.pretrain_seeds``; rows' ``pretrain_seed``), the
observation unit is the encoder: the mean of each encoder's confirm seeds, and Welch compares those means with
the scratch seeds (``"pretrain_and_finetune"``), so the interval holds the variance between pre-training runs too.
``n_confirm`` counts the observations: confirm seeds, or encoders. Why this test, its power and its measured
calibration: docs/statistics.md, "Verdicts".
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from ..results.rows import ResultRow

__all__ = ["BASELINE", "MIN_SEEDS", "TEST", "VARIANCES", "Verdict", "compare_to_scratch"]

TEST = "Welch's two-sided t-test"
BASELINE = "scratch"
MIN_SEEDS = 2  # a sample variance needs two seeds (or encoders) on each side
# What a verdict's observations vary by: one encoder's fine-tuning seeds, or encoders (pre-training runs).
VARIANCES = ("finetune_seeds", "pretrain_and_finetune")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One compared point against its scratch baseline (the ``report.json`` contract, plus both means, which
    variance the test includes and the point's encoder count). ``n_confirm``: the point's observations (confirm
    seeds for ``variance`` "finetune_seeds", encoders for "pretrain_and_finetune"); ``n_encoders``: its
    pre-trained encoders with confirm seeds; ``mean``: the mean of its observations. ``p_value``, ``p_adjusted``
    and ``effect_interval`` are None when both sides have zero variance (no test)."""

    task: str
    method: str
    variant: str
    backbone: str
    pretrain_dataset: str
    pretrain_flops: float
    baseline: str
    effect: float
    effect_interval: tuple[float, float] | None
    p_value: float | None
    p_adjusted: float | None
    significant: bool
    n_confirm: int
    n_baseline: int
    mean: float
    baseline_mean: float
    variance: str = VARIANCES[0]
    n_encoders: int = 1

    def name(self) -> str:
        """The point in words, e.g. "clip vit-test on fmnist_objects at 1.6e+12 FLOPs"."""
        label = f"{self.method} ({self.variant})" if self.variant else self.method
        return f"{label} {self.backbone} on {self.pretrain_dataset or '-'} at {self.pretrain_flops:.3g} FLOPs"

    def to_json(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        record["effect_interval"] = None if self.effect_interval is None else list(self.effect_interval)
        return record


def _welch(points: list[np.ndarray], bases: list[np.ndarray]) -> list[tuple[float | None,
                                                                   tuple[float, float] | None]]:
    """Two-sided Welch p-value and 95% interval of mean(point) - mean(base) for each pair; (None, None) where both
    have zero variance. Pairs of equal sizes go through one vectorised `scipy.stats.ttest_ind` call."""
    out: list[tuple[float | None, tuple[float, float] | None]] = [(None, None)] * len(points)
    sizes: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (point, base) in enumerate(zip(points, bases, strict=True)):
        if np.ptp(point) > 0 or np.ptp(base) > 0:
            sizes[(point.size, base.size)].append(i)
    for index in sizes.values():
        with warnings.catch_warnings():  # nearly equal scores: scipy warns of precision loss, the result stands
            warnings.simplefilter("ignore", RuntimeWarning)
            result = stats.ttest_ind(np.stack([points[i] for i in index]), np.stack([bases[i] for i in index]),
                                     axis=1, equal_var=False)
            ci = result.confidence_interval(0.95)
        for k, i in enumerate(index):
            out[i] = float(result.pvalue[k]), (float(ci.low[k]), float(ci.high[k]))
    return out


def compare_to_scratch(rows: Sequence[ResultRow], *, alpha: float = 0.05) -> tuple[Verdict, ...]:
    """Every compared point's `Verdict` (module docstring), sorted by task and point. Rows not done, rows without
    a FLOP count and explore seeds are not used."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r}: expected a level in (0, 1)")
    points: dict[tuple, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    scratch: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in rows:
        if not row.done or row.role != "confirm" or row.pretrain_flops is None:
            continue
        if row.is_scratch:
            scratch[(row.backbone, row.task)].append(float(row.score))
        else:
            key = (row.task, row.method, row.variant, row.backbone, row.pretrain_dataset, row.pretrain_flops)
            points[key][row.pretrain_seed].append(float(row.score))
    pairs = []
    for key, encoders in sorted(points.items()):
        base = scratch.get((key[3], key[0]), [])
        if len(encoders) > 1:  # the unit is the encoder: its confirm seeds' mean
            observed = [float(np.mean(scores)) for _, scores in sorted(encoders.items())]
        else:
            (observed,) = encoders.values()
        if len(observed) >= MIN_SEEDS and len(base) >= MIN_SEEDS:
            pairs.append((key, np.array(observed, np.float64), np.array(base, np.float64), len(encoders)))
    tests = _welch([p for _, p, _, _ in pairs], [b for _, _, b, _ in pairs])
    tested = [(*pair, *test) for pair, test in zip(pairs, tests, strict=True)]
    ps = [p for *_, p, _ in tested if p is not None]
    adjusted = iter(_holm(ps, alpha))
    out = []
    for (task, method, variant, backbone, dataset, flops), point, baseline, encoders, p, interval in tested:
        p_adj = next(adjusted) if p is not None else None
        out.append(Verdict(
            task=task, method=method, variant=variant, backbone=backbone, pretrain_dataset=dataset,
            pretrain_flops=flops, baseline=BASELINE, effect=float(point.mean() - baseline.mean()),
            effect_interval=interval, p_value=p, p_adjusted=p_adj,
            significant=p_adj is not None and p_adj < alpha, n_confirm=int(point.size),
            n_baseline=int(baseline.size), mean=float(point.mean()), baseline_mean=float(baseline.mean()),
            variance=VARIANCES[1] if encoders > 1 else VARIANCES[0], n_encoders=encoders))
    return tuple(out)


def _holm(p_values: list[float], alpha: float) -> list[float]:
    """Holm-adjusted p-values (statsmodels), in the input order."""
    if not p_values:
        return []
    from statsmodels.stats.multitest import multipletests

    adjusted = multipletests(p_values, alpha=alpha, method="holm")[1]
    return [min(1.0, float(p)) if math.isfinite(p) else 1.0 for p in adjusted]

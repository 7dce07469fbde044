"""Calibration of the curve laws' intervals and of crossovers, by simulation from a known truth.

Sweeps are drawn like the demo's (configs/demo.py): every curve has 3 budgets (4e11, 8e11, 1.6e12 FLOPs), one
pre-trained encoder per budget, one explore fine-tuning seed per encoder, and each method's best point (by its
explore score, over both pre-training datasets) gets `CONFIRM` confirm seeds. The truth: score = 100 - A (C/C0)^b
per curve, an encoder effect (sd `TAU`) per pre-training run and seed noise (sd `SIGMA`) per fine-tuning seed. The
real code fits the rows (`flopstudy.fit_curves` on `build_curves`, then `fit_crossover`); the tests assert:
- 95% intervals of the curve cover the true score in 90-99% of the curves at each budget, and the held-out
  checks' 95% prediction intervals hold the observation in 90-99% of the curves;
- 95% crossover intervals cover the true crossover in >= 90% of the draws that report one, for curves whose
  larger model trails at low compute (the usual case) and leads there (what the old code called "wins
  throughout"), and such crossovers are found (p_cross >= 5%) in most draws.

Run as a script for the table in docs/statistics.md (more draws):
    python packages/flopstudy/tests/test_calibration.py --draws 1000
"""

import argparse
import math

import numpy as np
from flopstudy import CurveKey, ResultRow, build_curves, fit_crossover, fit_curves

BUDGETS = (4e11, 8e11, 1.6e12)
METHODS = ("supervised", "clip", "simclr", "byol", "dino", "mae")
DATASETS = ("fmnist_objects", "fmnist_scenes")
TASK = "seg"
TAU, SIGMA = 1.0, 0.8  # encoder-level and fine-tuning-seed sd, score points (the demo's seed sd is ~0.5-1)
CONFIRM = 3
N_BOOT = 400


def _row(method: str, backbone: str, dataset: str, flops: float, seed: int, score: float, role: str,
         run: str) -> ResultRow:
    return ResultRow(method=method, variant="", backbone=backbone, pretrain_dataset=dataset, pretrain_steps=100,
                     pretrain_flops=flops, task=TASK, seed=seed, score=score, status="done", seed_role=role,
                     run_dir=run)


def _true_score(a: float, b: float, flops: float) -> float:
    return 100.0 - a * (flops / BUDGETS[0]) ** b


def demo_sweep(rng: np.random.Generator, truth: dict) -> list[ResultRow]:
    """One simulated demo sweep of ``truth`` ({(method, dataset): (A, b)}): rows with seed roles."""
    rows, explore = [], {}
    for (method, dataset), (a, b) in truth.items():
        for flops in BUDGETS:
            mean = _true_score(a, b, flops) + rng.normal(0, TAU)
            run = f"{method}-{dataset}-{flops:g}"
            explore[(method, dataset, flops)] = (mean, run)
            rows.append(_row(method, "vit-test", dataset, flops, 0, mean + rng.normal(0, SIGMA), "explore", run))
    for method in METHODS:  # the best point of each method gets confirm seeds (selected on the explore seed)
        mine = [r for r in rows if r.method == method]
        best = max(mine, key=lambda r: r.score)
        mean, run = explore[(method, best.pretrain_dataset, best.pretrain_flops)]
        rows += [_row(method, "vit-test", best.pretrain_dataset, best.pretrain_flops, s, mean + rng.normal(0, SIGMA),
                      "confirm", run) for s in range(1, CONFIRM + 1)]
    return rows


def _demo_truth(rng: np.random.Generator) -> dict:
    return {(m, d): (rng.uniform(50, 70), rng.uniform(-0.25, -0.05)) for m in METHODS for d in DATASETS}


def coverage(draws: int, seed: int = 0) -> tuple[np.ndarray, float]:
    """Share of curves whose 95% interval covers the true score, per budget, and share of held-out checks whose
    observation fell inside its 95% prediction interval, over ``draws`` sweeps."""
    rng = np.random.default_rng(seed)
    hits = np.zeros(len(BUDGETS))
    total = inside = 0
    for draw in range(draws):
        truth = _demo_truth(rng)
        curves, _, _ = build_curves(demo_sweep(rng, truth))
        fits, _ = fit_curves(curves, n_boot=N_BOOT, seed=draw)
        for key, fit in fits.items():
            a, b = truth[(key.method, key.pretrain_dataset)]
            for i, flops in enumerate(BUDGETS):
                lo, hi = fit.score_interval(flops)
                hits[i] += lo <= _true_score(a, b, flops) <= hi
            inside += fit.check.inside
            total += 1
    return hits / total, inside / total


def crossover_sweep(rng: np.random.Generator, larger_leads_early: bool | None) -> tuple[list[ResultRow], float]:
    """Two backbones of one method on one dataset whose true curves cross near the middle of the range, plus two
    other methods on both datasets (the noise model pools over 6 curves); returns the rows and the true crossing
    FLOPs. ``larger_leads_early=None``: parallel curves instead, the larger model 4-5 points ahead (no crossing)."""
    truth = {(m, d): (rng.uniform(50, 70), rng.uniform(-0.25, -0.05)) for m in METHODS[1:3] for d in DATASETS}
    rows = []
    for (method, dataset), (a, b) in truth.items():
        for flops in BUDGETS:
            rows.append(_row(method, "vit-test", dataset, flops, 0,
                             _true_score(a, b, flops) + rng.normal(0, TAU) + rng.normal(0, SIGMA), "explore",
                             f"{method}-{dataset}-{flops:g}"))
    cross = math.sqrt(BUDGETS[0] * BUDGETS[2]) * rng.uniform(0.85, 1.15)
    slow, fast = -0.05, -0.45  # exponents: the faster curve overtakes at `cross`
    a_slow = 60.0
    a_fast = a_slow * (cross / BUDGETS[0]) ** (slow - fast)
    laws = {"vit-s": (a_fast, fast), "vit-l": (a_slow, slow)} if larger_leads_early else \
        {"vit-s": (a_slow, slow), "vit-l": (a_fast, fast)}
    if larger_leads_early is None:
        laws = {"vit-s": (60.0, -0.2), "vit-l": (55.0, -0.2)}
    for backbone, (a, b) in laws.items():
        for flops in BUDGETS:
            run = f"{backbone}-{flops:g}"
            mean = _true_score(a, b, flops) + rng.normal(0, TAU)
            rows += [_row("mae", backbone, "fmnist_objects", flops, s, mean + rng.normal(0, SIGMA),
                          "explore" if s == 0 else "confirm", run) for s in range(1 + CONFIRM)]
    return rows, cross


def crossover_rates(draws: int, larger_leads_early: bool, seed: int = 0) -> tuple[float, float, float]:
    """(share of draws reporting a crossover, coverage of the true crossover among them, share whose text names
    the right leader at the top of the range)."""
    rng = np.random.default_rng(seed)
    found = covered = right = 0
    for draw in range(draws):
        rows, cross = crossover_sweep(rng, larger_leads_early)
        curves, _, _ = build_curves(rows)
        fits, _ = fit_curves(curves, n_boot=N_BOOT, seed=draw)
        small = fits[CurveKey("mae", "", "vit-s", "fmnist_objects", TASK)].law
        large = fits[CurveKey("mae", "", "vit-l", "fmnist_objects", TASK)].law
        result = fit_crossover(small, large, names=("vit-s", "vit-l"))
        if result.interval is not None:  # p_cross >= 5%
            found += 1
            covered += result.interval[0] <= cross <= result.interval[1]
            right += result.leader_after == ("vit-s" if larger_leads_early else "vit-l")
    return found / draws, covered / max(found, 1), right / max(found, 1)


def test_curve_intervals_cover_the_true_curve_at_every_budget():
    # 40 sweeps x 12 curves = 480 intervals per budget: a Monte-Carlo sd of 1.0 point at 95% (more with the
    # draws' shared noise model), so 90-99% holds a calibrated method with margin and fails at the old 60-77%.
    rates, inside = coverage(40)
    assert np.all(rates >= 0.90) and np.all(rates <= 0.99), rates
    assert 0.90 <= inside <= 0.99, inside  # the held-out checks' prediction intervals, too


def test_crossovers_are_found_and_their_intervals_cover_the_truth():
    for larger_leads_early in (False, True):
        found, covered, right = crossover_rates(40, larger_leads_early)
        # 40 draws: a Monte-Carlo sd of about 3.5 points on a coverage of 95%.
        assert found >= 0.8, (larger_leads_early, found)
        assert covered >= 0.90, (larger_leads_early, covered)
        assert right >= 0.95, (larger_leads_early, right)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="print the calibration table of docs/statistics.md")
    parser.add_argument("--draws", type=int, default=1000)
    args = parser.parse_args()
    rates, inside = coverage(args.draws)
    print(f"| quantity | measured ({args.draws} sweeps) |\n|---|---|")
    for flops, rate in zip(BUDGETS, rates, strict=True):
        print(f"| 95% curve interval covers the true score at {flops:.3g} FLOPs | {rate:.1%} |")
    print(f"| held-out check: the largest budget's observation inside its 95% prediction interval | {inside:.1%} |")
    for leads, name in ((False, "larger model trails at low compute"), (True, "larger model leads at low compute")):
        found, covered, right = crossover_rates(args.draws, leads)
        print(f"| {name}: crossover found (p_cross >= 5%) | {found:.1%} |")
        print(f"| {name}: 95% interval covers the true crossover, of those found | {covered:.1%} |")
        print(f"| {name}: right model named ahead after it, of those found | {right:.1%} |")
    rng = np.random.default_rng(0)
    claims = []
    for draw in range(args.draws):
        curves, _, _ = build_curves(crossover_sweep(rng, None)[0])
        fits, _ = fit_curves(curves, n_boot=N_BOOT, seed=draw)
        claims.append(fit_crossover(fits[CurveKey("mae", "", "vit-s", "fmnist_objects", TASK)].law,
                                    fits[CurveKey("mae", "", "vit-l", "fmnist_objects", TASK)].law).outcome)
    for outcome in ("possible crossover", "crossover"):
        share = claims.count(outcome) / len(claims)
        print(f"| parallel curves 4-5 points apart: reported as '{outcome}' | {share:.1%} |")

import itertools
import math

import numpy as np
import pytest
from flopmeter.pareto import crossover_cost, pareto_front


def _brute_force_front(costs, scores):
    """Reference: on the front iff no other point is at least as good on both axes and better on one."""
    keep = []
    for i in range(len(costs)):
        if not any(
            costs[j] <= costs[i] and scores[j] >= scores[i] and (costs[j] < costs[i] or scores[j] > scores[i])
            for j in range(len(costs))
        ):
            keep.append(i)
    return set(keep)


def test_front_hand_case():
    assert pareto_front([1, 2, 3], [0.5, 0.4, 0.9]) == [0, 2]
    assert pareto_front([3, 1, 2], [0.9, 0.1, 0.5]) == [1, 2, 0]  # sorted by cost


def test_front_matches_brute_force_and_is_monotone():
    rng = np.random.default_rng(0)
    for _ in range(20):
        costs = rng.integers(1, 10, size=15).astype(float)
        scores = rng.integers(0, 10, size=15).astype(float)
        front = pareto_front(costs, scores)
        assert set(front) == _brute_force_front(costs, scores)
        # along the front, cost rises and score rises strictly (no dominated point kept)
        for a, b in itertools.pairwise(front):
            assert costs[a] <= costs[b]
            assert scores[a] <= scores[b]


def test_front_rejects_bad_input():
    with pytest.raises(ValueError, match="len"):
        pareto_front([1, 2], [1])
    with pytest.raises(ValueError, match="finite"):
        pareto_front([1, float("nan")], [1, 2])


def test_crossover_in_log_space():
    # A: flat at 0.5; B: from 0.3 at 1e18 to 0.7 at 1e20 (linear in log10 cost) -> crosses at 1e19.
    x = crossover_cost([1e18, 1e20], [0.5, 0.5], [1e18, 1e20], [0.3, 0.7])
    assert math.isclose(x, 1e19, rel_tol=1e-9)
    assert crossover_cost([1e18, 1e20], [0.9, 0.9], [1e18, 1e20], [0.3, 0.7]) is None  # B never wins
    assert crossover_cost([1e18, 1e20], [0.1, 0.1], [1e18, 1e20], [0.3, 0.7]) == 1e18  # B wins from the start
    assert crossover_cost([1, 2], [0, 0], [3, 4], [1, 1]) is None  # no overlap

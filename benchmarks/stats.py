"""Statistics of the fair protocol: simple regret, bootstrap intervals, paired tests, wins/ties/losses.

- `simple_regret`: optimum - best reward (never below 0); the optimum is the task's known one
  or, where none is known (the trainers), the best reward any searcher found on that seed.
- `bootstrap_interval`: a percentile bootstrap interval of a statistic (the median by
  default) over seeds, from a generator seeded by the caller, so a table is reproducible.
- `paired_test`: scipy.stats.wilcoxon, two-sided, on per-seed paired values; every pair
  equal gives p = 1 (scipy refuses that case).
- `wins_ties_losses`: per-seed comparison where lower is better (regret), ties within `TIE`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

TIE = 1e-9  # two regrets closer than this are a tie
BOOTSTRAP_RESAMPLES = 2000
LEVEL = 0.95


def simple_regret(optimum: float, best: float) -> float:
    """How far the best reward found is from the optimum (0 when it reaches it)."""
    return max(0.0, optimum - best)


def bootstrap_interval(
    values: Sequence[float],
    statistic: Callable[[np.ndarray], float] = np.median,
    resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over ``values`` (resampled with replacement)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("bootstrap_interval: no values")
    rng = np.random.default_rng(seed)
    draws = rng.choice(data, size=(resamples, data.size), replace=True)
    estimates = np.apply_along_axis(statistic, 1, draws)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(estimates, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_curves(
    curves: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, level: float = LEVEL, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median over rows (seeds) at every column (iteration), with a percentile bootstrap interval per column."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, curves.shape[0], size=(resamples, curves.shape[0]))
    medians = np.median(curves[rows], axis=1)  # resamples x iterations
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(medians, [tail, 100 - tail], axis=0)
    return np.median(curves, axis=0), low, high


@dataclass(frozen=True)
class PairedTest:
    """Wilcoxon signed-rank test of ours - theirs over paired seeds."""

    pairs: int
    statistic: float
    p_value: float


def paired_test(ours: Sequence[float], theirs: Sequence[float]) -> PairedTest:
    """Two-sided Wilcoxon signed-rank test (zero differences dropped, scipy's default); p = 1 when all are zero."""
    if len(ours) != len(theirs):
        raise ValueError(f"paired_test: {len(ours)} values against {len(theirs)}")
    differences = np.asarray(ours, dtype=float) - np.asarray(theirs, dtype=float)
    if not np.any(np.abs(differences) > TIE):
        return PairedTest(len(ours), math.nan, 1.0)
    result = stats.wilcoxon(differences)
    return PairedTest(len(ours), float(result.statistic), float(result.pvalue))


def wins_ties_losses(ours: Sequence[float], theirs: Sequence[float]) -> tuple[int, int, int]:
    """Seeds where ours is lower (a win: regret, iterations), equal within `TIE`, higher."""
    pairs = list(zip(ours, theirs))
    wins = sum(a < b - TIE for a, b in pairs)
    ties = sum(abs(a - b) <= TIE for a, b in pairs)
    return wins, ties, len(pairs) - wins - ties

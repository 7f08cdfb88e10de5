"""Rewards from metrics: larger is better, failures are not numbers.

A spec's objective is a weighted mean of terms, each scored into [0, 1]:
- ``ratio``: a quantity whose best value is ``target`` (usually 1.0) is scored by its
  log distance to the target, so x and target**2/x score the same and 5.0 never beats
  1.0: ``score = max(0, 1 - |log10(x / target)| / log10(tolerance))`` where
  ``tolerance`` (default 10) is the factor at which the score reaches 0. Each term is
  scored alone before averaging, so per-type ratios 0.5 and 1.5 never cancel.
- ``maximize`` / ``minimize``: linear in ``[low, high]``, clipped to [0, 1].
A nan, infinite or missing value scores 0 for its term, and so does a non-positive
ratio. Guards (``rate_constants_R2 >= 0.5``) zero the reward and name themselves. A
missing or nan primary metric, or no usable value in any term, is a failure:
``Score.reward is None`` and ``Score.failure`` says why; it is never a 0.0.
Invalid definitions (unknown kind, empty range, non-positive target) raise `SpecError`.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

from memory.errors import SpecError

OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
TERM_KINDS = ("ratio", "maximize", "minimize")
WORST_REWARD = 0.0  # rewards lie in [WORST_REWARD, 1]; what a run that failed because of its config is worth to a model


def _usable(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


@dataclass(frozen=True)
class RewardTerm:
    """One scored metric; ``tolerance`` is the ratio factor at which a ratio scores 0."""

    metric: str
    kind: str = "ratio"
    target: float = 1.0
    tolerance: float = 10.0
    low: float = 0.0
    high: float = 1.0
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in TERM_KINDS:
            raise SpecError(f"reward term {self.metric}: kind {self.kind!r} is not one of {', '.join(TERM_KINDS)}")
        if self.kind == "ratio" and not (self.target > 0 and self.tolerance > 1):
            raise SpecError(f"reward term {self.metric}: a ratio needs target > 0 and tolerance > 1")
        if self.kind != "ratio" and not self.high > self.low:
            raise SpecError(f"reward term {self.metric}: high ({self.high}) must be above low ({self.low})")
        if not self.weight >= 0:
            raise SpecError(f"reward term {self.metric}: weight must be >= 0")

    def score(self, value: float | None) -> float:
        """This term's score in [0, 1]; nan, inf, missing values and ratios <= 0 score 0."""
        if not _usable(value):
            return 0.0
        if self.kind == "ratio":
            if value <= 0:
                return 0.0
            distance = abs(math.log10(value / self.target))
            return max(0.0, 1.0 - distance / math.log10(self.tolerance))
        fraction = (value - self.low) / (self.high - self.low)
        if self.kind == "minimize":
            fraction = 1.0 - fraction
        return min(1.0, max(0.0, fraction))


@dataclass(frozen=True)
class Guard:
    """A condition a run must meet (``rate_constants_R2 >= 0.5``); nan never meets it."""

    metric: str
    op: str
    value: float

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise SpecError(f"guard on {self.metric}: operator {self.op!r} is not one of {' '.join(OPERATORS)}")

    def holds(self, metrics: dict[str, float]) -> bool:
        observed = metrics.get(self.metric, math.nan)
        return not math.isnan(observed) and OPERATORS[self.op](observed, self.value)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


CONVERGED = "converged"  # the band label of a result worth reporting (DESIGN.md)
FAILED = "failed"  # the label below every band, also of a run with no reward (a failure) or a failing guard


@dataclass(frozen=True)
class Band:
    """A classification band on the primary metric: ``low <= value < high`` gets ``label``."""

    label: str
    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.high >= self.low:
            raise SpecError(f"band {self.label}: high ({self.high}) is below low ({self.low})")


@dataclass(frozen=True)
class Score:
    reward: float | None  # None: a failure, never to be read as 0.0
    classification: str  # converged | partial | failed
    guard_failed: str = ""  # the guard that zeroed the reward, if any
    failure: str = ""  # why reward is None: "nan: avg_slope_ratio", "missing: ..."


@dataclass(frozen=True)
class Objective:
    """The weighted mean of ``terms``, zeroed by any failing guard; bands classify ``primary``."""

    primary: str
    terms: tuple[RewardTerm, ...]
    guards: tuple[Guard, ...] = ()
    bands: tuple[Band, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not sum(term.weight for term in self.terms) > 0:
            raise SpecError("objective: needs at least one reward term with a positive weight")

    def classify(self, metrics: dict[str, float]) -> str:
        value = metrics.get(self.primary, math.nan)
        if math.isnan(value):
            return FAILED
        for band in self.bands:
            if band.low <= value < band.high:
                return band.label
        return FAILED

    def score(self, metrics: dict[str, float]) -> Score:
        """The reward of one finished run's metrics."""
        if self.primary not in metrics:
            return Score(reward=None, classification=FAILED, failure=f"missing: {self.primary}")
        if math.isnan(metrics[self.primary]):
            return Score(reward=None, classification=FAILED, failure=f"nan: {self.primary}")
        if not any(_usable(metrics.get(term.metric)) for term in self.terms):
            return Score(reward=None, classification=FAILED, failure="nan: every reward term")
        for guard in self.guards:
            if not guard.holds(metrics):
                return Score(reward=0.0, classification=FAILED, guard_failed=str(guard))
        total_weight = sum(term.weight for term in self.terms)
        reward = sum(term.weight * term.score(metrics.get(term.metric, math.nan)) for term in self.terms)
        return Score(reward=reward / total_weight, classification=self.classify(metrics))

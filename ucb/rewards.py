"""Rewards from metrics: larger is better, failures are not numbers.

A spec's objective is a weighted mean of terms, each scored into [0, 1]:
- ``ratio``: a quantity whose best value is ``target`` (usually 1.0) is scored by its
  log distance to the target, so x and target**2/x score the same and 5.0 never beats
  1.0: ``score = max(0, 1 - |log10(x / target)| / log10(tolerance))`` where
  ``tolerance`` (default 10) is the factor at which the score reaches 0. Each term is
  scored alone before averaging, so per-type ratios 0.5 and 1.5 never cancel.
- ``maximize`` / ``minimize``: linear in ``[low, high]``, clipped to [0, 1].
A nan or non-positive ratio scores 0 for that term. Guards (``rate_constants_R2 >= 0.5``)
zero the reward and name themselves. A missing primary metric or a nan in every term
is a failure: ``Score.reward is None``.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
TERM_KINDS = ("ratio", "maximize", "minimize")


@dataclass(frozen=True)
class RewardTerm:
    metric: str
    kind: str = "ratio"
    target: float = 1.0
    tolerance: float = 10.0
    low: float = 0.0
    high: float = 1.0
    weight: float = 1.0

    def score(self, value: float) -> float:
        """This term's score in [0, 1]; nan and impossible ratios score 0."""
        if value is None or math.isnan(value):
            return 0.0
        if self.kind == "ratio":
            if value <= 0 or math.isinf(value):
                return 0.0
            distance = abs(math.log10(value / self.target))
            return max(0.0, 1.0 - distance / math.log10(self.tolerance))
        fraction = (value - self.low) / (self.high - self.low)
        if self.kind == "minimize":
            fraction = 1.0 - fraction
        return min(1.0, max(0.0, fraction))


@dataclass(frozen=True)
class Guard:
    metric: str
    op: str
    value: float

    def holds(self, metrics: dict[str, float]) -> bool:
        observed = metrics.get(self.metric, math.nan)
        return not math.isnan(observed) and OPERATORS[self.op](observed, self.value)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


@dataclass(frozen=True)
class Band:
    """A classification band on the primary metric: ``low <= value < high`` gets ``label``."""

    label: str
    low: float
    high: float


@dataclass(frozen=True)
class Score:
    reward: float | None          # None: a failure, never to be read as 0.0
    classification: str           # converged | partial | failed
    guard_failed: str = ""        # the guard that zeroed the reward, if any


@dataclass(frozen=True)
class Objective:
    primary: str
    terms: tuple[RewardTerm, ...]
    guards: tuple[Guard, ...] = ()
    bands: tuple[Band, ...] = field(default_factory=tuple)

    def classify(self, metrics: dict[str, float]) -> str:
        value = metrics.get(self.primary, math.nan)
        if math.isnan(value):
            return "failed"
        for band in self.bands:
            if band.low <= value < band.high:
                return band.label
        return "failed"

    def score(self, metrics: dict[str, float]) -> Score:
        """The reward of one finished run's metrics."""
        if math.isnan(metrics.get(self.primary, math.nan)):
            return Score(reward=None, classification="failed")
        for guard in self.guards:
            if not guard.holds(metrics):
                return Score(reward=0.0, classification="failed", guard_failed=str(guard))
        total_weight = sum(term.weight for term in self.terms)
        reward = sum(term.weight * term.score(metrics.get(term.metric, math.nan)) for term in self.terms)
        return Score(reward=reward / total_weight, classification=self.classify(metrics))

"""The candidate changes of one parent, and how they are ranked.

`CandidateRanker.candidates` lists every single change of a parent's config the action
allows: each step of each number (log-scaled values move by factors, others by a
fraction of their range), each other value of a choice or bool (code strategies only at
a block boundary), the half-way value toward one that diverged, the directives' own
values (``try``, and the parent's values moved by a new ``pin`` or ``bound``), and in
fallback random values. `score` ranks them: the action's preferences, the spec's
priority, the evidence ledger of the slot and the surrogate's acquisition.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from agent.directive_rules import typed
from agent.evidence import Ledger
from agent.history import NodeRecord, format_value
from agent.playbook import Action, Playbook, Preference
from agent.snapshot import Snapshot
from agent.spec import Spec
from agent.surrogate import Surrogate
from slots.space import Parameter

LOG_FACTORS = {"small": 1.5, "normal": 3.0, "big": 10.0}
LINEAR_FRACTIONS = {"small": 0.05, "normal": 0.15, "big": 0.4}

# candidate score weights (see `CandidateRanker.score`)
PREFERRED, PREFERRED_OTHER_DIRECTION, PRIORITY_STEP = 0.5, 0.1, 0.05
EVIDENCE_WEIGHT, UNTRIED_BONUS, OTHER_STEP_PENALTY = 2.0, 0.05, 0.2
CODE_STRATEGY_PREFERRED, TRY_DIRECTIVE, SURROGATE_WEIGHT = 1.0, 10.0, 1.0
BACKOFF = "backoff"  # the step of the half-way value toward a diverged one
RANDOM = "random"  # the step of a fallback's random value
FALLBACK_DRAWS = 20  # random values tried per number parameter when every step ran


@dataclass(frozen=True)
class Candidate:
    parameter: Parameter
    old: Any
    value: Any
    direction: str
    step: str
    bonus: float = 0.0


@dataclass(frozen=True)
class Context:
    """What one decision computes once and every parent shares."""

    taken: Collection  # signatures of every run done or in flight (`Snapshot.taken`)
    ledger: Ledger
    surrogate: Surrogate | None
    tries: list[tuple[Parameter, Any]]


class CandidateRanker:
    """Candidates and their scores for one spec; ties broken by ``rng`` (seeded by the policy)."""

    def __init__(self, spec: Spec, playbook: Playbook, rng: random.Random):
        self.spec = spec
        self.playbook = playbook
        self.rng = rng

    def open_tries(self, snapshot: Snapshot) -> list[tuple[Parameter, Any]]:
        """``try`` directives no run has tried yet (a try is proposed once)."""
        tries = []
        for directive in snapshot.directives:
            parameter = self.spec.space.get(directive.key or "")
            if (
                directive.kind == "try"
                and parameter is not None
                and not any(r.params.get(parameter.key) == directive.value for r in snapshot.records)
            ):
                tries.append((parameter, directive.value))
        return tries

    def candidates(
        self, raw: dict[str, Any], base: dict[str, Any], slot: int, action: Action, boundary: bool, context: Context
    ) -> list[Candidate]:
        """Single changes of ``base`` (the parent with pins and bounds applied), and the directives' own."""
        found = [
            Candidate(self.spec.space.get(key), raw[key], base[key], "directive", action.step, TRY_DIRECTIVE)
            for key in base
            if base[key] != raw[key]
        ]
        found += [
            Candidate(parameter, base[parameter.key], value, "directive", action.step, TRY_DIRECTIVE)
            for parameter, value in context.tries
            if value != base[parameter.key]
        ]
        for parameter in self.spec.space:
            if parameter.code_strategy and not boundary:
                continue
            if action.code_only and not parameter.code_strategy:
                continue
            if parameter.kind in ("choice", "bool"):
                found.extend(self._options(parameter, base[parameter.key], action))
            else:
                diverged = context.ledger.diverged(parameter.key, base, slot)
                found.extend(
                    c
                    for c in self._numbers(parameter, base[parameter.key], action, diverged)
                    if not beyond(c.value, c.old, diverged)
                )
        return found

    def _options(self, parameter: Parameter, value: Any, action: Action) -> list[Candidate]:
        """Every other value of a choice or bool; the action's code strategies first."""
        options = parameter.choices if parameter.kind == "choice" else (True, False)
        wanted = list(action.code_strategies) if parameter.code_strategy else []
        return [
            Candidate(
                parameter,
                value,
                option,
                f"={format_value(option)}",
                action.step,
                CODE_STRATEGY_PREFERRED - 0.02 * wanted.index(option) if option in wanted else 0.0,
            )
            for option in options
            if option != value
        ]

    def _numbers(self, parameter: Parameter, value: Any, action: Action, diverged: list[Any]) -> list[Candidate]:
        """New values of a number: random draws in fallback, else every step and the half-way back-offs."""
        if action.step == RANDOM:
            draws = {typed(parameter, _draw(parameter, self.rng)) for _ in range(FALLBACK_DRAWS)} - {value}
            return [Candidate(parameter, value, new, "up" if new > value else "down", RANDOM) for new in draws]
        found = []
        for step in LOG_FACTORS:
            for direction in ("up", "down"):
                new = _step(parameter, value, step, direction)
                if new is not None:
                    penalty = 0.0 if step == action.step else -OTHER_STEP_PENALTY
                    found.append(Candidate(parameter, value, new, direction, step, penalty))
        for limit in _nearest(value, diverged):
            new = _halfway(parameter, value, limit)
            if new not in (value, limit):
                found.append(
                    Candidate(parameter, value, new, "up" if limit > value else "down", BACKOFF, -OTHER_STEP_PENALTY)
                )
        return found

    def score(
        self,
        scored: list[tuple[Candidate, dict]],
        base: dict[str, Any],
        slot: int,
        parent: NodeRecord | None,
        action: Action,
        context: Context,
    ) -> list[float]:
        priority = self.spec.space.priority_places()
        primary = parent.metrics.get(self.spec.objective.primary, math.nan) if parent else math.nan
        scores = []
        for candidate, _ in scored:
            key = candidate.parameter.key
            score = candidate.bonus - PRIORITY_STEP * priority[key]
            score += self._preference(candidate, action.prefer, primary)
            effect = context.ledger.mean_effect(key, candidate.direction, slot)
            score += UNTRIED_BONUS if effect is None else max(-0.5, min(0.5, EVIDENCE_WEIGHT * effect[0]))
            scores.append(score + self.rng.random() * 1e-6)
        if context.surrogate is not None:
            values = context.surrogate.acquisition([(params, slot) for _, params in scored] + [(base, slot)])
            scores = [s + SURROGATE_WEIGHT * (v - values[-1]) for s, v in zip(scores, values[:-1])]
        return scores

    def _preference(self, candidate: Candidate, prefer: tuple[Preference, ...], primary: float) -> float:
        for index, preference in enumerate(prefer):
            if self.spec.space.get(preference.param) != candidate.parameter:
                continue
            direction = preference.direction
            if direction == "toward_target":
                target = self.playbook.primary_target
                direction = "any" if math.isnan(primary) else ("up" if primary < target else "down")
            if direction in ("any", candidate.direction):
                return PREFERRED - 0.05 * index
            return PREFERRED_OTHER_DIRECTION
        return 0.0


def beyond(value: Any, start: Any, diverged: list[Any]) -> bool:
    """True when moving from ``start`` to ``value`` reaches or passes a value that diverged."""
    return any(start < limit <= value or value <= limit < start for limit in diverged)


def _nearest(value: Any, diverged: list[Any]) -> list[Any]:
    """The diverged values closest to ``value`` above and below it (at most one each)."""
    above = [limit for limit in diverged if limit > value]
    below = [limit for limit in diverged if limit < value]
    return ([min(above)] if above else []) + ([max(below)] if below else [])


def _halfway(parameter: Parameter, value: Any, limit: Any) -> Any:
    """The midpoint of ``value`` and ``limit``: geometric for a log-scaled parameter, else arithmetic."""
    if parameter.log and value > 0 and limit > 0:
        return typed(parameter, math.sqrt(value * limit))
    return typed(parameter, (value + limit) / 2)


def _draw(parameter: Parameter, rng: random.Random) -> float:
    """A value drawn uniformly in the parameter's range (in log space when log-scaled)."""
    if parameter.log and parameter.low > 0:
        return 10 ** rng.uniform(math.log10(parameter.low), math.log10(parameter.high))
    return rng.uniform(parameter.low, parameter.high)


def _step(parameter: Parameter, value: Any, step: str, direction: str) -> Any | None:
    """``value`` moved one ``step`` up or down (a factor in log space), clipped to the bounds; None if unmoved."""
    sign = 1 if direction == "up" else -1
    if parameter.log and value > 0:
        new = value * LOG_FACTORS[step] ** sign
    else:
        new = value + sign * LINEAR_FRACTIONS[step] * (parameter.high - parameter.low)
    new = typed(parameter, min(max(new, parameter.low), parameter.high))
    return None if new == value else new

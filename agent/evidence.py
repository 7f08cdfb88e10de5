"""The evidence ledger: what every mutation did to the reward, per parameter, direction and slot.

Each finished child with a one-parameter change and a parent with a reward gives one
`Effect` (reward after minus the parent's pooled reward). The policy reads the mean
effect of a (parameter, direction, slot) to rank candidate mutations; the working memory
turns consistent effects into Established Principles with their evidence.

The ledger also remembers every value that diverged (`diverged`): a one-parameter step
whose run diverged, keyed by the slot and every other setting, so the policy never
proposes that value, or one beyond it, again from a parent with the same other settings.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from statistics import fmean as mean
from typing import Any

from agent.history import NodeRecord

MIN_PRINCIPLE_EVIDENCE = 2  # effects needed before a direction becomes a principle
PRINCIPLE_AGREEMENT = 0.75  # share of effects with the same sign
NEGLIGIBLE = 0.01  # |mean effect| below this is "no effect"
DIVERGED = "diverged"  # the failure text of a run that diverged starts with this


@dataclass(frozen=True)
class Effect:
    key: str  # dotted search key
    direction: str  # up | down | =value
    slot: int
    delta: float  # reward(child) - pooled reward(parent); failures count as -parent reward
    iteration: int
    node_id: int
    failed: bool


@dataclass(frozen=True)
class Principle:
    """A direction whose effect held: ``held`` of ``len(effects)`` effects share its sign."""

    key: str
    direction: str
    effects: tuple[Effect, ...]
    held: int

    @property
    def mean_delta(self) -> float:
        return mean(e.delta for e in self.effects)

    @property
    def helps(self) -> bool:
        return self.mean_delta > 0


class Ledger:
    """Every mutation's effect, built from the finished records and pooled parent rewards."""

    def __init__(self, records: list[NodeRecord], pooled: dict[int, float | None]):
        self.effects: list[Effect] = []
        self._by_pair: dict[tuple[str, str], list[Effect]] = defaultdict(list)
        self._diverged: dict[tuple, list[Any]] = defaultdict(list)
        for record in records:
            if not record.finished or record.change is None:
                continue
            if record.failure.startswith(DIVERGED) and record.change.direction in ("up", "down"):
                self._diverged[_setting(record.slot, record.change.key, record.params)].append(record.change.new)
            parent_reward = pooled.get(record.parent) if record.parent is not None else None
            if parent_reward is None:
                continue
            child = 0.0 if record.reward is None else record.reward
            effect = Effect(
                record.change.key,
                record.change.direction,
                record.slot,
                child - parent_reward,
                record.iteration,
                record.node_id,
                record.failed,
            )
            self.effects.append(effect)
            self._by_pair[(effect.key, effect.direction)].append(effect)

    def matching(self, key: str, direction: str | None = None, slot: int | None = None) -> list[Effect]:
        pool = self.effects if direction is None else self._by_pair.get((key, direction), [])
        return [e for e in pool if e.key == key and slot in (None, e.slot)]

    def diverged(self, key: str, params: dict[str, Any], slot: int) -> list[Any]:
        """Values of ``key`` that diverged on ``slot`` with every other setting as in ``params``."""
        return self._diverged.get(_setting(slot, key, params), [])

    def mean_effect(self, key: str, direction: str, slot: int) -> tuple[float, int] | None:
        """Mean effect and count on this slot, else over all slots at half weight; None if never tried."""
        local = self.matching(key, direction, slot)
        if local:
            return mean(e.delta for e in local), len(local)
        anywhere = self.matching(key, direction)
        if anywhere:
            return 0.5 * mean(e.delta for e in anywhere), len(anywhere)
        return None

    def tried(self, key: str, slot: int) -> bool:
        return bool(self.matching(key, slot=slot))

    def principles(self) -> list[Principle]:
        """Directions with enough agreeing evidence, strongest effect first."""
        groups: dict[tuple[str, str], list[Effect]] = defaultdict(list)
        for effect in self.effects:
            groups[(effect.key, effect.direction)].append(effect)
        found = []
        for (key, direction), effects in groups.items():
            if len(effects) < MIN_PRINCIPLE_EVIDENCE:
                continue
            average = mean(e.delta for e in effects)
            if abs(average) < NEGLIGIBLE:
                continue
            held = sum(1 for e in effects if (e.delta > 0) == (average > 0))
            if held / len(effects) >= PRINCIPLE_AGREEMENT:
                found.append(Principle(key, direction, tuple(effects), held))
        return sorted(found, key=lambda p: -abs(p.mean_delta))

    def open_directions(self) -> list[tuple[str, str]]:
        """(key, direction) pairs tried at least twice whose effects disagree and that are no principle."""
        settled = {(p.key, p.direction) for p in self.principles()}
        groups: dict[tuple[str, str], list[float]] = defaultdict(list)
        for effect in self.effects:
            groups[(effect.key, effect.direction)].append(effect.delta)
        return [
            pair
            for pair, deltas in groups.items()
            if pair not in settled
            and len(deltas) >= MIN_PRINCIPLE_EVIDENCE
            and min(deltas) < -NEGLIGIBLE
            and max(deltas) > NEGLIGIBLE
        ]


def _setting(slot: int, key: str, params: dict[str, Any]) -> tuple:
    """The slot and every searched value but ``key``'s: what a diverged value is remembered under."""
    return slot, key, tuple(sorted((k, repr(v)) for k, v in params.items() if k != key))

"""The acquisition engine: which parent to branch from and which change to make, by expected improvement.

Called by the policy (agent/policy.py) for a free slot once the surrogate exists (at least
`agent.surrogate.MIN_POINTS` finished runs) and no playbook row has asked for a specific
kind of change. It may assume the surrogate was fitted on the finished runs (failures of
the config at the worst reward; beyond `agent.surrogate.MAX_POINTS` runs, the best and the
most recent) and that runs in flight are in it as believed points (`Surrogate.with_pending`).

Candidates are single changes of the best few parents (`PARENTS`, by the surrogate's
mean at the parent's own config, so one lucky seed does not lead the search): for a
number, values along its whole range (`LINE_POINTS`, evenly spaced in log space for a
log-scaled one) and close to the parent's value (`LOCAL_STEPS`), so the step's size is
chosen by the acquisition rather than fixed factors; for a choice or bool, every other
value. Code strategies change at a block boundary and only there: a decision at a
boundary changes a code strategy (seed 003's code review between blocks), the others
never do. With `exploration.max_changes` above
one, random pairs of such changes join them (`PAIRS` per parent). Each candidate is
scored by its expected improvement over the best predicted reward of a finished run (`predicted`)
(before any run is classed partial or converged, by the surrogate's uncertainty alone:
on a flat or noisy start the improvement is noise, and the search must first find where
the reward rises; measured, BENCHMARKS.md), on the free slot (the slot's fixed value is
an input of the surrogate, so a change that helped on one slot is carried to the others
where the surrogate expects it to help).
The best candidate that is new (never ran, not in flight, allowed by the directives, not
at or beyond a value that diverged from the same other settings) is the decision.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr

from agent.candidates import beyond
from agent.directive_rules import DirectiveRules, typed
from agent.evidence import Ledger
from agent.history import HYPERPARAMETER_ONLY, Change, NodeRecord, Proposal, changes_text, signature
from agent.playbook import Playbook
from agent.snapshot import Snapshot
from agent.spec import Spec
from agent.surrogate import MAX_POINTS, Surrogate
from slots.space import Parameter

PARENTS = 6  # parents whose changes are scored in one decision
LINE_POINTS = 16  # values along a number's whole range
LOCAL_STEPS = (0.03, 0.08)  # steps around the parent's value, as fractions of the (log) range
PAIRS = 24  # random two-change candidates per parent when `max_changes` > 1
XI = 0.0  # expected improvement's margin, in reward units
SQRT_2PI = np.sqrt(2 * np.pi)


@dataclass(frozen=True)
class Choice:
    """The decision: a parent, its changes, and the numbers that justify them."""

    parent: NodeRecord
    changes: tuple[Change, ...]
    params: dict[str, Any]
    improvement: float  # expected improvement over `incumbent`
    mean: float
    std: float
    incumbent: float
    candidates: int  # how many were scored

    def rationale(self, spec: Spec) -> str:
        return (
            f"highest expected improvement of {self.candidates} candidate changes of the {PARENTS} best-predicted"
            f" nodes: node {self.parent.node_id}, {changes_text(spec.space, self.changes)}"
            f" (expected improvement {self.improvement:.3g}; predicted {self.mean:.3f} +/- {self.std:.3f}"
            f" against the best predicted {self.incumbent:.3f})"
        )


def expected_improvement(mean: np.ndarray, std: np.ndarray, incumbent: float) -> np.ndarray:
    """E[max(0, f - incumbent - XI)] for f ~ N(mean, std^2)."""
    std = np.maximum(std, 1e-9)
    z = (mean - incumbent - XI) / std
    density = np.exp(-(z**2) / 2.0) / SQRT_2PI  # the standard normal's, as scipy.stats.norm computes them
    return (mean - incumbent - XI) * ndtr(z) + std * density


def is_new(
    spec: Spec,
    rules: DirectiveRules,
    snapshot: Snapshot,
    slot: int,
    parent: NodeRecord | None,
    params: dict[str, Any],
    changes: tuple[Change, ...],
) -> bool:
    """True when a candidate never ran, is not in flight and breaks no directive."""
    seed = parent.seed if parent else spec.base_seed()
    if signature(spec.slots.values[slot], params, seed) in snapshot.taken:
        return False
    parent_id = parent.node_id if parent else None
    if len(changes) == 1 and (parent_id, changes[0]) in snapshot.in_flight_changes:
        return False
    return rules.allowed(params, snapshot.directives)


def start_of(spec: Spec, rules: DirectiveRules, snapshot: Snapshot, parent: NodeRecord | None) -> dict[str, Any]:
    """The parent's searched values with the directives' pins and bounds applied (a key added to the
    spec after the parent ran takes the base value)."""
    return rules.enforce(raw_of(spec, parent), snapshot.directives)


def raw_of(spec: Spec, parent: NodeRecord | None) -> dict[str, Any]:
    return {**spec.base_params(), **(parent.params if parent else {})}


class Acquisition:
    """Candidate changes and their expected improvement, for one spec; ties broken by ``rng``."""

    def __init__(self, spec: Spec, playbook: Playbook, rules: DirectiveRules, rng: random.Random):
        self.spec = spec
        self.playbook = playbook
        self.rules = rules
        self.rng = rng

    def propose(
        self, snapshot: Snapshot, slot: int, ranked: list[NodeRecord], surrogate: Surrogate, boundary: bool
    ) -> Proposal | None:
        """The engine's proposal for ``slot`` from the ``ranked`` parents (`parents`); None if nothing is new.

        A pin or bound that moves the parent's value is one of the proposal's changes.
        """
        choice = self.choose(
            surrogate,
            ranked,
            snapshot.records,
            slot,
            boundary,
            snapshot.ledger,
            lambda parent, params, changes: is_new(self.spec, self.rules, snapshot, slot, parent, params, changes),
            lambda parent: start_of(self.spec, self.rules, snapshot, parent),
        )
        if choice is None:
            return None
        start = start_of(self.spec, self.rules, snapshot, choice.parent)
        raw = raw_of(self.spec, choice.parent)
        pins = tuple(Change(key, value, start[key]) for key, value in raw.items() if value != start[key])
        changes = pins + choice.changes
        strategy = HYPERPARAMETER_ONLY
        for change in changes:
            if self.spec.space.get(change.key).code_strategy:
                strategy = self.playbook.strategy_text(change.new)
        return Proposal(
            slot=slot,
            parent=choice.parent.node_id,
            mode="exploit" if choice.parent is ranked[0] else "explore",
            params=choice.params,
            seed=choice.parent.seed,
            changes=changes,
            strategy=strategy,
            rationale=choice.rationale(self.spec),
        )

    def parents(
        self, surrogate: Surrogate, parents: list[NodeRecord], rank: Callable[[], dict[int, int]]
    ) -> list[NodeRecord]:
        """The `PARENTS` of ``parents`` with the highest predicted reward at their own config and slot,
        best first (`predicted`). Exact ties (a flat start where every reward is the same) are broken
        by ``rank()``, each parent's place in UCB order (computed only then)."""
        means = self.predicted(surrogate, parents)
        found = [parent for parent in parents if parent.node_id in means]
        order = sorted(found, key=lambda parent: -means[parent.node_id])
        top = [means[parent.node_id] for parent in order[: PARENTS + 1]]
        if any(first == second for first, second in zip(top, top[1:])):
            places = rank()
            order = sorted(found, key=lambda parent: (-means[parent.node_id], places.get(parent.node_id, len(places))))
        return order[:PARENTS]

    def predicted(self, surrogate: Surrogate, records: list[NodeRecord]) -> dict[int, float]:
        """The predicted mean at each record's config and slot, by node id.

        The runs the surrogate was fitted on have theirs from the fit (`Surrogate.fitted_means`).
        With at most `MAX_POINTS` records every other one is predicted too (a run that taught the
        fit nothing: lost, cancelled, pruned; a key added to the spec after it ran takes the base
        value); beyond, only the fitted runs count, so a decision's cost does not grow with the
        log (the fit holds the best `BEST_POINTS` runs and the most recent).
        """
        means = dict(surrogate.fitted_means)
        others = [record for record in records if record.node_id not in means and record.params]
        if others and len(records) <= MAX_POINTS:
            rows = surrogate.encoder.matrix([(raw_of(self.spec, record), record.slot) for record in others])
            for record, mean in zip(others, surrogate.predict_mean(rows).tolist()):
                means[record.node_id] = mean
        return means

    def choose(
        self,
        surrogate: Surrogate,
        parents: list[NodeRecord],
        records: list[NodeRecord],
        slot: int,
        boundary: bool,
        ledger: Ledger,
        is_new: Callable[[NodeRecord, dict[str, Any], tuple[Change, ...]], bool],
        base: Callable[[NodeRecord], dict[str, Any]],
    ) -> Choice | None:
        """The new candidate with the highest expected improvement; None if no candidate is new.

        ``parents``: best first (`parents`), the first `PARENTS` are used; ``records``: every node,
        finished or in flight.
        ``base(parent)`` gives the parent's params with the directives' pins and bounds applied;
        ``is_new`` says whether a candidate may run (not taken, not in flight, allowed).
        """
        finished = [r for r in records if r.finished]
        untried = self._untried_code(records)
        scored: list[tuple[NodeRecord, tuple[Change, ...], dict[str, Any]]] = []
        rows = []
        for parent in parents[:PARENTS]:
            start = base(parent)
            row = surrogate.encoder.row(start, slot)
            for changes in self.changes(start, slot, boundary, ledger, untried):
                params = dict(start)
                for change in changes:
                    params[change.key] = change.new
                if not is_new(parent, params, changes):
                    continue
                scored.append((parent, changes, params))
                rows.append(surrogate.encoder.changed(row, [(change.key, change.new) for change in changes]))
        if not scored:
            return None
        mean, std = surrogate.predict_rows(np.array(rows))
        incumbent = max(self.predicted(surrogate, finished).values(), default=0.0)
        if any(r.reward is not None and not r.failed for r in finished):
            improvement = expected_improvement(mean, std, incumbent)
        else:
            improvement = std  # nothing the bands class partial or converged yet: explore where least is known
        noise = np.array([self.rng.random() * 1e-12 for _ in scored])
        index = int(np.argmax(improvement + noise))
        parent, changes, params = scored[index]
        return Choice(
            parent,
            changes,
            params,
            float(improvement[index]),
            float(mean[index]),
            float(std[index]),
            incumbent,
            len(scored),
        )

    def _untried_code(self, records: list[NodeRecord]) -> set[tuple[str, Any]]:
        """(key, value) of each code strategy no node has run or is running."""
        code = [p for p in self.spec.space if p.code_strategy]
        tried = {(p.key, r.params.get(p.key)) for p in code for r in records}
        return {(p.key, option) for p in code for option in p.choices if (p.key, option) not in tried}

    def changes(
        self,
        start: dict[str, Any],
        slot: int,
        boundary: bool,
        ledger: Ledger,
        untried: set[tuple[str, Any]] = frozenset(),
    ) -> list[tuple[Change, ...]]:
        """The changes of ``start`` worth scoring.

        Between blocks: each code change, alone or with one number's new value (a new code
        strategy often needs its own learning rate); to a code strategy no node has tried
        (``untried``) while there is one. Otherwise each single change of a number or a
        choice, and random pairs of them when `max_changes` allows.
        """
        code = [p for p in self.spec.space if p.code_strategy]
        singles = [
            change
            for parameter in self.spec.space
            if not parameter.code_strategy
            for change in self._moves(parameter, start, slot, ledger)
        ]
        if boundary and code:
            switches = [change for parameter in code for change in self._moves(parameter, start, slot, ledger)]
            if any((change.key, change.new) in untried for change in switches):
                switches = [change for change in switches if (change.key, change.new) in untried]
            numbers = [change for change in singles if self.spec.space.get(change.key).kind in ("int", "float")]
            return [(switch,) for switch in switches] + [(switch, number) for switch in switches for number in numbers]
        found: list[tuple[Change, ...]] = [(change,) for change in singles]
        if self.spec.exploration.max_changes > 1 and len(singles) > 1:
            for _ in range(PAIRS):
                first, second = self.rng.sample(singles, 2)
                if first.key != second.key:
                    found.append((first, second))
        return found

    def _moves(self, parameter: Parameter, start: dict[str, Any], slot: int, ledger: Ledger) -> list[Change]:
        """One parameter's new values: every other option, or the points of its `line` short of a divergence."""
        old = start[parameter.key]
        if parameter.kind in ("choice", "bool"):
            options = parameter.choices if parameter.kind == "choice" else (True, False)
            return [Change(parameter.key, old, option) for option in options if option != old]
        diverged = ledger.diverged(parameter.key, start, slot)
        return [Change(parameter.key, old, value) for value in line(parameter, old) if not beyond(value, old, diverged)]


def line(parameter: Parameter, value: Any) -> list[Any]:
    """New values of a number: `LINE_POINTS` over its whole range and `LOCAL_STEPS` around ``value``."""
    log = parameter.log and parameter.low > 0 and value > 0
    low, high = (math.log10(parameter.low), math.log10(parameter.high)) if log else (parameter.low, parameter.high)
    here = math.log10(value) if log else float(value)
    span = high - low
    points = [low + span * i / (LINE_POINTS - 1) for i in range(LINE_POINTS)]
    points += [here + sign * step * span for step in LOCAL_STEPS for sign in (-1, 1)]
    values = []
    for point in points:
        point = min(max(point, low), high)
        new = typed(parameter, 10**point if log else point)
        new = min(max(new, parameter.low), parameter.high)
        if new != value and new not in values:
            values.append(new)
    return values

"""The policy: for one free slot, which node to branch from, in which mode, with which change.

Called by the driver once per free slot, after the finished jobs are logged and the UCB
scores rebuilt (in-flight nodes count as virtual visits, so two free slots rarely pick
the same parent). One decision, in this order:

1. replicate: the best node gets `exploration.replicates` seed replicates on its own
   slot before it is reported best (its UCB then uses the pooled mean);
2. baseline: a slot that has never run starts from the base config (seed 003's initial spread);
3. parent: a `prefer-parent` directive, else the highest UCB node that is finished, has a
   reward and is not under a `freeze`; root last. A run the bands classify `failed` but
   that has a reward is a scored result and may be a parent (UCB ranks it); only a run
   without a reward (crash, timeout, diverged, nan, lost) never is;
4. mode: generic rules that serve any trainer (a diverged child: learning rate down or
   clipping tighter), then the playbook's table (agent/playbooks/), then a generic
   "flat metric: bigger step", then the playbook's default;
5. change: one parameter, ranked by the mode's preferences, the spec's priority, the
   evidence ledger (per slot) and a surrogate fitted on the history; log-scaled values
   move by a factor; code strategies change only at a block boundary; a config that
   already ran or is in flight, or that breaks a directive, is never proposed, nor a
   value at or beyond one that diverged from the same other settings (`Ledger.diverged`).
   A diverged step does not close its direction: the half-way value between the parent
   and the diverged one (geometric for log-scaled parameters) is a candidate like the
   other steps. (Making it the next proposal right after the divergence was measured
   worse on all five synthetic tasks: BENCHMARKS.md);
6. fallback: when every single step of every parent already ran or is in flight, one
   parameter of the first parent in that order takes a value drawn at random in its
   range, so a slot is never left idle while the budget lasts.
"""

from __future__ import annotations

import math
import operator
import random
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from agent.evidence import DIVERGED, Ledger
from agent.history import Change, NodeRecord, format_value, is_number, signature
from agent.playbook import Action, Playbook, Preference
from agent.spec import Spec
from agent.surrogate import Surrogate
from memory.directives import Directive
from memory.errors import ConfigError
from slots.config import get_path
from slots.space import Parameter

LOG_FACTORS = {"small": 1.5, "normal": 3.0, "big": 10.0}
LINEAR_FRACTIONS = {"small": 0.05, "normal": 0.15, "big": 0.4}
AVOID_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
DIVERGED_PARAMS = (("learning_rate", "down"), ("lr", "down"), ("clip", "down"))
FLAT_CHILDREN = 2  # children with an unchanged primary metric before a bigger step
FLAT_TOLERANCE = 0.01

# candidate score weights (see `_score`)
PREFERRED, PREFERRED_OTHER_DIRECTION, PRIORITY_STEP = 0.5, 0.1, 0.05
EVIDENCE_WEIGHT, UNTRIED_BONUS, OTHER_STEP_PENALTY = 2.0, 0.05, 0.2
CODE_STRATEGY_PREFERRED, TRY_DIRECTIVE, SURROGATE_WEIGHT = 1.0, 10.0, 1.0
BACKOFF = "backoff"  # the step of the half-way value toward a diverged one
RANDOM = "random"  # the step of a fallback's random value
FALLBACK_DRAWS = 20  # random values tried per number parameter when every step ran


@dataclass
class PolicyState:
    """What the policy sees when a slot frees: built by `agent.driver.policy_state`, or by hand in tests.

    The indexes below are computed once per state: build a new state when records change.
    """

    records: list[NodeRecord]  # finished and in flight (including this pass's proposals)
    ranking: list[tuple[int, float]]  # (node id, UCB), highest first
    pooled: dict[int, float | None]  # replicate-pooled reward per node id
    directives: list[Directive] = field(default_factory=list)
    entries_written: int = 0

    @cached_property
    def finished(self) -> list[NodeRecord]:
        return sorted((r for r in self.records if r.finished), key=lambda r: r.iteration)

    @cached_property
    def by_id(self) -> dict[int, NodeRecord]:
        return {r.node_id: r for r in self.records}

    @cached_property
    def children(self) -> dict[int | None, list[NodeRecord]]:
        """Finished originals (not replicates) by parent id, in log order."""
        found: dict[int | None, list[NodeRecord]] = defaultdict(list)
        for record in self.finished:
            if record.replicate_of is None:
                found[record.parent].append(record)
        return found

    @cached_property
    def in_flight_changes(self) -> set[tuple[int | None, Change]]:
        """(parent id, change) of every mutation in flight."""
        return {(r.parent, r.change) for r in self.records if not r.finished and r.change is not None}

    def get(self, node_id: int | None) -> NodeRecord | None:
        return self.by_id.get(node_id)


@dataclass(frozen=True)
class Proposal:
    """One decision: what a slot runs next and why."""

    slot: int
    parent: int | None
    mode: str
    params: dict[str, Any]
    seed: int | None
    change: Change | None = None  # for a replicate: the seed's change
    replicate_of: int | None = None
    strategy: str = "hyperparameter-only"
    rationale: str = ""

    def as_record(self, node_id: int) -> NodeRecord:
        """The in-flight node this proposal becomes once it has an id."""
        return NodeRecord(
            node_id=node_id,
            parent=self.parent,
            slot=self.slot,
            params=dict(self.params),
            seed=self.seed,
            mode=self.mode,
            replicate_of=self.replicate_of,
            change=None if self.replicate_of is not None else self.change,
        )

    def to_payload(self) -> dict[str, Any]:
        """JSON for the journal's payload column."""
        change = None if self.change is None else [self.change.key, self.change.old, self.change.new]
        return {
            "parent": self.parent,
            "mode": self.mode,
            "params": self.params,
            "seed": self.seed,
            "change": change,
            "replicate_of": self.replicate_of,
            "strategy": self.strategy,
            "rationale": self.rationale,
        }

    @classmethod
    def from_payload(cls, slot: int, payload: dict[str, Any]) -> Proposal:
        change = payload.get("change")
        return cls(
            slot=slot,
            parent=payload["parent"],
            mode=payload["mode"],
            params=dict(payload["params"]),
            seed=payload.get("seed"),
            change=Change(*change) if change else None,
            replicate_of=payload.get("replicate_of"),
            strategy=payload.get("strategy", "hyperparameter-only"),
            rationale=payload.get("rationale", ""),
        )

    def mutation_text(self, spec: Spec) -> str:
        """The Mutation line: ``short: old -> new``, or what a baseline or replicate is."""
        if self.replicate_of is not None:
            return f"replicate of node {self.replicate_of} (seed {self.change.old} -> {self.change.new})"
        if self.change is None:
            return f"none (baseline of slot_{self.slot})"
        parameter = spec.space.get(self.change.key)
        return f"{parameter.short}: {format_value(self.change.old)} -> {format_value(self.change.new)}"


@dataclass(frozen=True)
class _Candidate:
    parameter: Parameter
    old: Any
    value: Any
    direction: str
    step: str
    bonus: float = 0.0


@dataclass(frozen=True)
class _Context:
    """What one decision computes once and every parent shares."""

    taken: set  # signatures of every run done or in flight
    ledger: Ledger
    surrogate: Surrogate | None
    tries: list[tuple[Parameter, Any]]


class Policy:
    """One `propose` per free slot.

    Exact ties between candidates are broken by a generator seeded with `exploration.seed`.
    """

    def __init__(self, spec: Spec, playbook: Playbook):
        self.spec = spec
        self.playbook = playbook
        self.rng = random.Random(spec.exploration.seed)
        self._surrogate_key = -1  # finished records the cached surrogate was fitted on
        self._surrogate_fit: Surrogate | None = None

    # ------------------------------------------------------------------ decisions

    def propose(self, state: PolicyState, slot: int) -> Proposal | None:
        """The next run for ``slot``; None only when no allowed config is left to run."""
        taken = {
            signature(self.spec.slots.values[r.slot], r.params, r.seed)
            for r in state.records
            if 0 <= r.slot < self.spec.n_slots
        }
        replicate = self._replicate(state, slot, taken)
        if replicate is not None:
            return replicate
        if not any(r.slot == slot for r in state.records):
            baseline = self._baseline(state, slot, taken)
            if baseline is not None:
                return baseline
        context = _Context(
            taken, Ledger(state.finished, state.pooled), self._surrogate(state.finished), self._open_tries(state)
        )
        parents = self.parent_candidates(state)
        for fallback in (False, True):
            for parent in parents:
                proposal = self._mutate(state, slot, parent, context, fallback)
                if proposal is not None:
                    return proposal
        return None

    def _surrogate(self, finished: list[NodeRecord]) -> Surrogate | None:
        """The surrogate of these finished nodes, refitted only when a node has finished since the last fit."""
        if len(finished) != self._surrogate_key:
            self._surrogate_key = len(finished)
            self._surrogate_fit = Surrogate.fit(
                self.spec.space, self.spec.n_slots, finished, self.spec.exploration.seed
            )
        return self._surrogate_fit

    def parent_candidates(self, state: PolicyState) -> list[NodeRecord | None]:
        """Parents to try in order: a prefer-parent directive, then UCB order; root last.

        A node is a parent when it is a finished original with a reward: a run the bands
        classify `failed` is one (UCB ranks it low); a crash, timeout or divergence is not.
        """
        frozen = {d.node for d in state.directives if d.kind == "freeze"}
        preferred = [d.node for d in state.directives if d.kind == "prefer-parent"]
        order = preferred + [node_id for node_id, _ in state.ranking]
        parents: dict[int, NodeRecord] = {}
        seen: dict[int, bool] = {}
        for node_id in order:
            record = state.get(node_id)
            if (
                record is None
                or not record.finished
                or record.reward is None
                or record.replicate_of is not None
                or record.node_id in parents
                or (frozen and self._under_freeze(state, record, frozen, seen))
            ):
                continue
            parents[record.node_id] = record
        return [*parents.values(), None]

    def decide_mode(self, state: PolicyState, parent: NodeRecord | None) -> Action:
        """The action for branching from ``parent``: generic diverged rule, playbook, generic flat rule."""
        children = state.children.get(parent.node_id if parent else None, [])
        if children and children[-1].failure.startswith(DIVERGED):
            return self._after_divergence(children[-1])
        action = self.playbook.decide(parent, state.finished)
        if action is self.playbook.default and parent is not None and self._flat(parent, children):
            return Action(
                mode="explore",
                step="big",
                prefer=action.prefer,
                rule=f"{self.spec.objective.primary} flat over {len(children)} children: bigger step",
            )
        return action

    def _after_divergence(self, child: NodeRecord) -> Action:
        """A diverged child: learning rate down, clipping tighter.

        The diverged value stays barred, see `_candidates`.
        """
        prefer = tuple(
            Preference(p.key, direction)
            for p in self.spec.space
            for word, direction in DIVERGED_PARAMS
            if word in p.key.lower().split(".")[-1]
        )
        return Action(
            mode="exploit",
            step="normal",
            prefer=prefer,
            rule=f"child {child.node_id} diverged: learning rate down, clipping tighter",
        )

    def at_block_boundary(self, state: PolicyState) -> bool:
        """True between the last entry of a block and the first of the next (seed 003's code review)."""
        block = self.spec.exploration.n_iter_block
        return state.entries_written > 0 and state.entries_written % block == 0

    # ------------------------------------------------------------------ the three kinds of proposal

    def root_params(self) -> dict[str, Any]:
        return {p.key: get_path(self.spec.base, p.key) for p in self.spec.space}

    def root_seed(self) -> int | None:
        seed_key = self.spec.trainer.seed_key
        return get_path(self.spec.base, seed_key, None) if seed_key else None

    def _baseline(self, state: PolicyState, slot: int, taken: set) -> Proposal | None:
        params, seed = self.enforce(self.root_params(), state.directives), self.root_seed()
        if signature(self.spec.slots.values[slot], params, seed) in taken or not self.allowed(params, state.directives):
            return None
        return Proposal(
            slot=slot,
            parent=None,
            mode="explore",
            params=params,
            seed=seed,
            rationale=f"first run of slot_{slot}: the base config",
        )

    def _replicate(self, state: PolicyState, slot: int, taken: set) -> Proposal | None:
        wanted = self.spec.exploration.replicates
        best = best_node(state.records, state.pooled)
        if not wanted or best is None or best.slot != slot or not self.spec.trainer.seed_key:
            return None
        count = sum(1 for r in state.records if r.replicate_of == best.node_id)
        if count >= wanted:
            return None
        seed = (best.seed or 0) + 1000 * (count + 1)
        duplicate = signature(self.spec.slots.values[slot], best.params, seed) in taken
        if duplicate or not self.allowed(best.params, state.directives):
            return None
        return Proposal(
            slot=slot,
            parent=best.node_id,
            mode="replicate",
            params=dict(best.params),
            seed=seed,
            change=Change(self.spec.trainer.seed_key, best.seed, seed),
            replicate_of=best.node_id,
            rationale=f"best node {best.node_id} has {count} of {wanted} replicates",
        )

    def _mutate(
        self, state: PolicyState, slot: int, parent: NodeRecord | None, context: _Context, fallback: bool
    ) -> Proposal | None:
        """The best new single change of ``parent``; None if none is new.

        A step, or with ``fallback`` a random value.
        """
        action = self.decide_mode(state, parent)
        boundary = self.at_block_boundary(state)
        if action.code_only and not boundary:
            action = action.fallback or self.playbook.default
        if fallback:
            action = Action(
                mode="explore",
                step=RANDOM,
                prefer=action.prefer,
                rule="every step of every parent already ran or is in flight: a random value",
            )
        raw = {**self.root_params(), **(parent.params if parent else {})}  # a key added to the spec later: base value
        base = self.enforce(raw, state.directives)
        seed = parent.seed if parent else self.root_seed()
        parent_id = parent.node_id if parent else None
        scored = []
        for candidate in self._candidates(raw, base, slot, action, boundary, context):
            params = {**base, candidate.parameter.key: candidate.value}
            change = Change(candidate.parameter.key, candidate.old, candidate.value)
            if (
                signature(self.spec.slots.values[slot], params, seed) in context.taken
                or (parent_id, change) in state.in_flight_changes
                or not self.allowed(params, state.directives)
            ):
                continue
            scored.append((candidate, params, change))
        if not scored:
            return None
        scores = self._score([(c, p) for c, p, _ in scored], base, slot, parent, action, context)
        (candidate, params, change), _ = max(zip(scored, scores), key=lambda pair: pair[1])
        strategy = (
            self.playbook.strategy_text(candidate.value) if candidate.parameter.code_strategy else "hyperparameter-only"
        )
        where = "root" if parent is None else f"node {parent.node_id}"
        return Proposal(
            slot=slot,
            parent=parent_id,
            mode=action.mode,
            params=params,
            seed=seed,
            change=change,
            strategy=strategy,
            rationale=f"{action.rule}; from {where}",
        )

    # ------------------------------------------------------------------ candidates and their ranking

    def _open_tries(self, state: PolicyState) -> list[tuple[Parameter, Any]]:
        """``try`` directives no run has tried yet (a try is proposed once)."""
        tries = []
        for directive in state.directives:
            parameter = self.spec.space.get(directive.key or "")
            if (
                directive.kind == "try"
                and parameter is not None
                and not any(r.params.get(parameter.key) == directive.value for r in state.records)
            ):
                tries.append((parameter, directive.value))
        return tries

    def _candidates(
        self, raw: dict[str, Any], base: dict[str, Any], slot: int, action: Action, boundary: bool, context: _Context
    ) -> list[_Candidate]:
        """Single changes of ``base`` (the parent with pins and bounds applied), and the directives' own."""
        found = [
            _Candidate(self.spec.space.get(key), raw[key], base[key], "directive", action.step, TRY_DIRECTIVE)
            for key in base
            if base[key] != raw[key]
        ]
        found += [
            _Candidate(parameter, base[parameter.key], value, "directive", action.step, TRY_DIRECTIVE)
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
                    if not _beyond(c.value, c.old, diverged)
                )
        return found

    def _options(self, parameter: Parameter, value: Any, action: Action) -> list[_Candidate]:
        """Every other value of a choice or bool; the action's code strategies first."""
        options = parameter.choices if parameter.kind == "choice" else (True, False)
        wanted = list(action.code_strategies) if parameter.code_strategy else []
        return [
            _Candidate(
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

    def _numbers(self, parameter: Parameter, value: Any, action: Action, diverged: list[Any]) -> list[_Candidate]:
        """New values of a number: random draws in fallback, else every step and the half-way back-offs."""
        if action.step == RANDOM:
            draws = {_typed(parameter, _draw(parameter, self.rng)) for _ in range(FALLBACK_DRAWS)} - {value}
            return [_Candidate(parameter, value, new, "up" if new > value else "down", RANDOM) for new in draws]
        found = []
        for step in LOG_FACTORS:
            for direction in ("up", "down"):
                new = _step(parameter, value, step, direction)
                if new is not None:
                    penalty = 0.0 if step == action.step else -OTHER_STEP_PENALTY
                    found.append(_Candidate(parameter, value, new, direction, step, penalty))
        for limit in _nearest(value, diverged):
            new = _halfway(parameter, value, limit)
            if new not in (value, limit):
                found.append(
                    _Candidate(parameter, value, new, "up" if limit > value else "down", BACKOFF, -OTHER_STEP_PENALTY)
                )
        return found

    def _score(
        self,
        scored: list[tuple[_Candidate, dict]],
        base: dict[str, Any],
        slot: int,
        parent: NodeRecord | None,
        action: Action,
        context: _Context,
    ) -> list[float]:
        priority = {p.key: rank for rank, p in enumerate(self.spec.space.by_priority())}
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

    def _preference(self, candidate: _Candidate, prefer: tuple[Preference, ...], primary: float) -> float:
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

    # ------------------------------------------------------------------ directives and helpers

    def directive_problem(self, directive: Directive) -> str:
        """Why a well-formed directive cannot apply to this spec's search space ('' when it can).

        Called when the directives are read: such a directive is reported and ignored like a
        malformed one, so a value the space refuses never leaves a slot idle or stops the daemon.
        """
        if directive.kind not in ("pin", "try", "bound", "avoid"):
            return ""
        parameter = self.spec.space.get(directive.key or "")
        if parameter is None:
            return f"{directive.key} is not in the search space"
        values = {"pin": [directive.value], "try": [directive.value], "bound": [directive.low, directive.high]}
        try:
            for value in values.get(directive.kind, []):
                parameter.validate(value)
        except ConfigError as error:
            return str(error)
        numeric = parameter.kind in ("float", "int")
        if directive.kind == "avoid" and numeric and directive.op != "==" and not is_number(directive.value):
            return f"{parameter.key}: {directive.value!r} is not a number"
        return ""

    def allowed(self, params: dict[str, Any], directives: list[Directive]) -> bool:
        """True when ``params`` obeys every pin, avoid and bound directive on a searched key."""
        for directive in directives:
            parameter = self.spec.space.get(directive.key or "")
            if parameter is None or parameter.key not in params:
                continue
            value = params[parameter.key]
            if directive.kind == "pin" and value != directive.value:
                return False
            if directive.kind == "bound" and not directive.low <= value <= directive.high:
                return False
            if directive.kind == "avoid" and _avoided(value, directive):
                return False
        return True

    def enforce(self, params: dict[str, Any], directives: list[Directive]) -> dict[str, Any]:
        """``params`` with every pin set and every bound applied (clipped into its range)."""
        params = dict(params)
        for directive in directives:
            parameter = self.spec.space.get(directive.key or "")
            if parameter is None or parameter.key not in params:
                continue
            if directive.kind == "pin":
                params[parameter.key] = directive.value
            elif directive.kind == "bound":
                clipped = min(max(params[parameter.key], directive.low), directive.high)
                params[parameter.key] = _typed(parameter, clipped) if clipped != params[parameter.key] else clipped
        return params

    def _under_freeze(self, state: PolicyState, record: NodeRecord, frozen: set[int], seen: dict[int, bool]) -> bool:
        """True when ``record`` or an ancestor is frozen.

        ``seen`` keeps every answer, so a pass over all nodes is O(n).
        """
        path, node, answer = [], record, False
        while node is not None:
            if node.node_id in seen:
                answer = seen[node.node_id]
                break
            if node.node_id in frozen:
                answer = True
                break
            path.append(node.node_id)
            node = state.get(node.parent)
        seen.update(dict.fromkeys(path, answer))
        return answer

    def _flat(self, parent: NodeRecord, children: list[NodeRecord]) -> bool:
        primary = self.spec.objective.primary
        reference = parent.metrics.get(primary, math.nan)
        recent = [c.metrics.get(primary, math.nan) for c in children[-FLAT_CHILDREN:]]
        return (
            len(recent) == FLAT_CHILDREN
            and not math.isnan(reference)
            and all(abs(v - reference) <= FLAT_TOLERANCE * max(1.0, abs(reference)) for v in recent)
        )


def best_node(records: list[NodeRecord], pooled: dict[int, float | None]) -> NodeRecord | None:
    """The finished, non-failed original (not a replicate) with the highest pooled reward."""
    candidates = [
        r
        for r in records
        if r.finished and not r.failed and r.replicate_of is None and pooled.get(r.node_id) is not None
    ]
    return max(candidates, key=lambda r: (pooled[r.node_id], -r.node_id), default=None)


def replicates_done(records: list[NodeRecord], node_id: int) -> int:
    return sum(1 for r in records if r.replicate_of == node_id and r.finished)


def _avoided(value: Any, directive: Directive) -> bool:
    try:
        return AVOID_OPS[directive.op](value, directive.value)
    except TypeError:
        return False


def _beyond(value: Any, start: Any, diverged: list[Any]) -> bool:
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
        return _typed(parameter, math.sqrt(value * limit))
    return _typed(parameter, (value + limit) / 2)


def _draw(parameter: Parameter, rng: random.Random) -> float:
    """A value drawn uniformly in the parameter's range (in log space when log-scaled)."""
    if parameter.log and parameter.low > 0:
        return 10 ** rng.uniform(math.log10(parameter.low), math.log10(parameter.high))
    return rng.uniform(parameter.low, parameter.high)


def _typed(parameter: Parameter, value: float) -> Any:
    return int(round(value)) if parameter.kind == "int" else _round(float(value))


def _round(value: float, digits: int = 3) -> float:
    """``value`` to ``digits`` significant digits, so log lines and configs agree exactly."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))


def _step(parameter: Parameter, value: Any, step: str, direction: str) -> Any | None:
    """``value`` moved one ``step`` up or down (a factor in log space), clipped to the bounds; None if unmoved."""
    sign = 1 if direction == "up" else -1
    if parameter.log and value > 0:
        new = value * LOG_FACTORS[step] ** sign
    else:
        new = value + sign * LINEAR_FRACTIONS[step] * (parameter.high - parameter.low)
    new = _typed(parameter, min(max(new, parameter.low), parameter.high))
    return None if new == value else new

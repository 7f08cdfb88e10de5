"""The agent's records: `NodeRecord` (one node, finished or in flight), `Proposal` (one
decision: what a slot runs next and why) and `Change` (one parameter's old and new value).

Finished nodes come from the log entries (the `Node:` line is the truth for the tree;
the `Config:` line, in the spec's short aliases, gives the searched values back); nodes
in flight come from the journal's payloads (`Proposal.to_payload`). Values are typed by
the spec's search space, so the policy compares numbers, not text. A node changes one
parameter of its parent, or several when a person edited its slot config before launch:
the Mutation line then lists every change (``a: x -> y; b: u -> v``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from memory.notebook import Entry, parse_mutation
from slots.space import Parameter, SearchSpace
from ucb.rewards import FAILED

SEED_ALIAS = "seed"
CHANGE_SEPARATOR = "; "  # between the changes of one Mutation line
HYPERPARAMETER_ONLY = "hyperparameter-only"


@dataclass(frozen=True)
class Change:
    """One mutation with typed values: ``key`` is the dotted search-space key."""

    key: str
    old: Any
    new: Any

    @property
    def direction(self) -> str:
        """up | down for numbers, the new value's text for choices and booleans."""
        if is_number(self.old) and is_number(self.new):
            return "up" if self.new > self.old else "down"
        return f"={format_value(self.new)}"


@dataclass
class NodeRecord:
    """One node: what ran (params, seed, slot), why (mode, change) and, once done, how it went."""

    node_id: int
    parent: int | None
    slot: int
    params: dict[str, Any]  # dotted search key -> value
    seed: int | None = None
    mode: str = ""
    changes: tuple[Change, ...] = ()  # against the parent; empty for baselines and replicates
    replicate_of: int | None = None
    iteration: int | None = None  # None while in flight
    status: str = "running"  # converged | partial | failed | running
    metrics: dict[str, float] = field(default_factory=dict)
    reward: float | None = None  # this run's own reward; None for a failure
    failure: str = ""

    @property
    def change(self) -> Change | None:
        """The one change against the parent (None for none or several: no single parameter's evidence)."""
        return self.changes[0] if len(self.changes) == 1 else None

    @property
    def finished(self) -> bool:
        return self.iteration is not None

    @property
    def failed(self) -> bool:
        return self.status == FAILED


def is_number(value: Any) -> bool:
    """A real number (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_value(value: Any) -> str:
    """A value as written in Config and Mutation lines (floats to 6 significant digits)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def parse_value(parameter: Parameter, text: str) -> Any:
    """The typed value of ``text`` for ``parameter``; ValueError when it cannot be one."""
    text = text.strip()
    if parameter.kind == "float":
        number = float(text)
        if not math.isfinite(number):  # no search space holds one; a hand edit can write it
            raise ValueError(f"{parameter.short}: {text!r} is not a finite number")
        return number
    if parameter.kind == "int":
        number = float(text)
        if not math.isfinite(number) or number != int(number):
            raise ValueError(f"{parameter.short}: {text!r} is not an integer")
        return int(number)
    if parameter.kind == "bool":
        if text.lower() not in ("true", "false"):
            raise ValueError(f"{parameter.short}: {text!r} is not true or false")
        return text.lower() == "true"
    for choice in parameter.choices:
        if format_value(choice) == text:
            return choice
    raise ValueError(f"{parameter.short}: {text!r} is not one of {list(parameter.choices)}")


def config_line(space: SearchSpace, params: dict[str, Any], seed: int | None) -> dict[str, str]:
    """The Config line's pairs: every searched value by its short alias, then the seed."""
    pairs = {p.short: format_value(params[p.key]) for p in space if p.key in params}
    if seed is not None:
        pairs[SEED_ALIAS] = str(seed)
    return pairs


def parse_change(space: SearchSpace, text: str) -> Change | None:
    """``short: old -> new`` as a typed Change; None for baselines, replicates and free text."""
    mutation = parse_mutation(text)
    parameter = space.get(mutation.param) if mutation else None
    if parameter is None:
        return None
    try:
        return Change(parameter.key, parse_value(parameter, mutation.old), parse_value(parameter, mutation.new))
    except ValueError:
        return None


def parse_changes(space: SearchSpace, text: str) -> tuple[Change, ...]:
    """Every ``short: old -> new`` of a Mutation line (``;``-separated); () when one is unreadable."""
    changes = tuple(parse_change(space, part) for part in text.split(CHANGE_SEPARATOR.strip()))
    return () if None in changes else changes


def changes_text(space: SearchSpace, changes: tuple[Change, ...]) -> str:
    """The Mutation line's ``short: old -> new`` pairs, ``; ``-separated."""
    return CHANGE_SEPARATOR.join(
        f"{space.get(c.key).short}: {format_value(c.old)} -> {format_value(c.new)}" for c in changes
    )


def record_from_entry(entry: Entry, space: SearchSpace, reward: float | None) -> NodeRecord:
    """The finished node an entry describes; values the entry does not give stay absent."""
    params = {}
    for short, text in entry.config.items():
        parameter = space.get(short)
        if parameter is not None:
            try:
                params[parameter.key] = parse_value(parameter, text)
            except ValueError:
                continue
    seed_text = entry.config.get(SEED_ALIAS, "")
    replicate = entry.is_replicate
    return NodeRecord(
        node_id=entry.node_id,
        parent=entry.parent,
        slot=entry.slot if entry.slot is not None else -1,
        params=params,
        seed=int(seed_text) if seed_text.lstrip("-").isdigit() else None,
        mode=entry.mode,
        changes=() if replicate else parse_changes(space, entry.mutation),
        replicate_of=entry.parent if replicate else None,
        iteration=entry.iteration,
        status=entry.status,
        metrics=dict(entry.metrics),
        reward=reward,
        failure=entry.failure,
    )


def signature(slot_value: Any, params: dict[str, Any], seed: int | None) -> tuple:
    """What makes two runs the same run: slot value, every searched value, seed."""
    return (repr(slot_value), tuple(sorted((k, repr(v)) for k, v in params.items())), seed)


@dataclass(frozen=True)
class Proposal:
    """One decision: what a slot runs next and why."""

    slot: int
    parent: int | None
    mode: str
    params: dict[str, Any]
    seed: int | None
    changes: tuple[Change, ...] = ()  # for a replicate: the seed's change
    replicate_of: int | None = None
    strategy: str = HYPERPARAMETER_ONLY
    rationale: str = ""

    @property
    def change(self) -> Change | None:
        return self.changes[0] if len(self.changes) == 1 else None

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
            changes=() if self.replicate_of is not None else self.changes,
        )

    def to_payload(self) -> dict[str, Any]:
        """JSON for the journal's payload column."""
        return {
            "parent": self.parent,
            "mode": self.mode,
            "params": self.params,
            "seed": self.seed,
            "changes": [[c.key, c.old, c.new] for c in self.changes],
            "replicate_of": self.replicate_of,
            "strategy": self.strategy,
            "rationale": self.rationale,
        }

    @classmethod
    def from_payload(cls, slot: int, payload: dict[str, Any]) -> Proposal:
        """A payload of `to_payload` (or of an older ucbx, with a single ``change``)."""
        changes = payload.get("changes")
        if changes is None:
            changes = [payload["change"]] if payload.get("change") else []
        return cls(
            slot=slot,
            parent=payload["parent"],
            mode=payload["mode"],
            params=dict(payload["params"]),
            seed=payload.get("seed"),
            changes=tuple(Change(*change) for change in changes),
            replicate_of=payload.get("replicate_of"),
            strategy=payload.get("strategy", HYPERPARAMETER_ONLY),
            rationale=payload.get("rationale", ""),
        )

    def mutation_text(self, space: SearchSpace) -> str:
        """The Mutation line: ``short: old -> new`` (each change), or what a baseline or replicate is."""
        if self.replicate_of is not None:
            seed = self.changes[0]
            return f"replicate of node {self.replicate_of} (seed {seed.old} -> {seed.new})"
        if not self.changes:
            return f"none (baseline of slot_{self.slot})"
        return changes_text(space, self.changes)

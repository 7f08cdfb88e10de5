"""The agent's view of the exploration: one `NodeRecord` per node, finished or in flight.

Finished nodes come from the log entries (the `Node:` line is the truth for the tree;
the `Config:` line, in the spec's short aliases, gives the searched values back); nodes
in flight come from the journal's payloads. Values are typed by the spec's search
space, so the policy compares numbers, not text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from memory.notebook import Entry, parse_mutation
from slots.space import Parameter, SearchSpace

SEED_ALIAS = "seed"
FAILED = "failed"


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
    change: Change | None = None
    replicate_of: int | None = None
    iteration: int | None = None  # None while in flight
    status: str = "running"  # converged | partial | failed | running
    metrics: dict[str, float] = field(default_factory=dict)
    reward: float | None = None  # this run's own reward; None for a failure
    failure: str = ""

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
        return float(text)
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
        change=None if replicate else parse_change(space, entry.mutation),
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

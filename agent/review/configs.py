"""Config differences: what a node changed against the base config or its parent.

Owns flattening a nested config into dotted keys and listing the keys whose values
differ, in the order a person reads them (the first config's order, then new keys).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from agent.history import format_value

ABSENT = "(absent)"


@dataclass(frozen=True)
class Difference:
    key: str
    old: Any  # ABSENT when the key is new
    new: Any  # ABSENT when the key was removed


def flatten(config: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) for every leaf of a nested mapping."""
    if isinstance(config, Mapping) and config:
        for name, value in config.items():
            yield from flatten(value, f"{prefix}.{name}" if prefix else str(name))
    elif prefix:
        yield prefix, config


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Difference]:
    """Keys whose values differ between two nested configs (True and 1 differ)."""
    before, after = dict(flatten(old)), dict(flatten(new))
    keys = list(before) + [key for key in after if key not in before]
    return [
        Difference(key, before.get(key, ABSENT), after.get(key, ABSENT))
        for key in keys
        if not _same(before.get(key, ABSENT), after.get(key, ABSENT))
    ]


def _same(a: Any, b: Any) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def diff_table(rows: list[Difference], old_label: str, new_label: str) -> str:
    """A markdown table of the differences ("no differences" when there are none)."""
    if not rows:
        return f"No differences between {old_label} and {new_label}.\n"
    lines = [f"| key | {old_label} | {new_label} |", "| --- | --- | --- |"]
    lines += [f"| `{row.key}` | {format_value(row.old)} | {format_value(row.new)} |" for row in rows]
    return "\n".join(lines) + "\n"


def diff_lines(rows: list[Difference]) -> list[str]:
    """``key: old -> new`` per difference, for the terminal."""
    return [f"{row.key}: {format_value(row.old)} -> {format_value(row.new)}" for row in rows]

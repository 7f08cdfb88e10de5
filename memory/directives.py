"""Directives: a person's instructions to the agent, one bullet each under ``## Directives``.

Owns their syntax and the `Directive` record. The agent reads them every iteration and
never rewrites the section. Syntax (KEY is a config key or its short alias)::

    - pin KEY = VALUE          always use this value
    - avoid KEY OP VALUE       never propose a value with KEY OP VALUE (OP: < <= > >= ==)
    - bound KEY LOW HIGH       keep KEY within [LOW, HIGH]
    - try KEY = VALUE          propose this value soon (once)
    - prefer-parent N          branch from node N when it is a valid parent
    - freeze N                 no more children from node N's subtree

Values are read as YAML (``1e-3``, ``0.01``, ``true``, ``rollout``). Lines that are not
bullets, HTML comments and text after `` # `` are ignored. A malformed directive is a
`Problem` with its line and is otherwise ignored: it never stops the agent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from memory.analysis_log import parse_number
from memory.errors import Problem

KINDS = ("pin", "avoid", "bound", "try", "prefer-parent", "freeze")
OPS = ("<=", ">=", "==", "<", ">")
KEY = r"[A-Za-z_][\w.\-]*"
BULLET_RE = re.compile(r"^\s*[-*+]\s+(.*)$")
COMMENT_RE = re.compile(r"<!--.*?-->", re.DOTALL)
SYNTAX = {
    "pin": re.compile(rf"^({KEY})\s*=\s*(.+)$"),
    "try": re.compile(rf"^({KEY})\s*=\s*(.+)$"),
    "avoid": re.compile(rf"^({KEY})\s*(<=|>=|==|<|>)\s*(.+)$"),
    "bound": re.compile(rf"^({KEY})\s+(\S+)\s+(\S+)$"),
    "prefer-parent": re.compile(r"^(\d+)$"),
    "freeze": re.compile(r"^(\d+)$"),
}
USAGE = {
    "pin": "pin KEY = VALUE",
    "try": "try KEY = VALUE",
    "avoid": "avoid KEY OP VALUE (OP one of < <= > >= ==)",
    "bound": "bound KEY LOW HIGH",
    "prefer-parent": "prefer-parent N",
    "freeze": "freeze N",
}


@dataclass(frozen=True)
class Directive:
    """One parsed directive; fields that do not apply to its kind stay None."""

    kind: str  # pin | avoid | bound | try | prefer-parent | freeze
    key: str | None = None
    op: str | None = None  # avoid only
    value: Any = None  # pin, try, avoid
    low: float | None = None  # bound only
    high: float | None = None
    node: int | None = None  # prefer-parent, freeze
    line: int = 0  # 1-based line in the memory file


def parse_value(text: str) -> Any:
    """A directive value: YAML, with ``1e-3`` read as a number (YAML 1.1 reads it as text)."""
    text = text.strip()
    number = parse_number(text)
    if number is not None:
        return int(text) if re.fullmatch(r"[+-]?\d+", text) else number
    return yaml.safe_load(text)


def _blank_comments(text: str) -> str:
    """HTML comments replaced by as many newlines as they held, so line numbers stay."""
    return COMMENT_RE.sub(lambda match: "\n" * match.group(0).count("\n"), text)


def parse_directive(text: str, line: int = 0) -> Directive:
    """One directive from its text (without the bullet); raises ValueError naming the syntax."""
    kind, _, rest = text.strip().partition(" ")
    kind = kind.lower()
    if kind not in KINDS:
        raise ValueError(f"unknown directive {kind!r} (known: {', '.join(KINDS)})")
    match = SYNTAX[kind].match(rest.strip())
    if not match:
        raise ValueError(f"expected '{USAGE[kind]}'")
    groups = match.groups()
    if kind in ("prefer-parent", "freeze"):
        return Directive(kind, node=int(groups[0]), line=line)
    try:
        if kind == "bound":
            low, high = parse_value(groups[1]), parse_value(groups[2])
            if not all(isinstance(bound, (int, float)) and not isinstance(bound, bool) for bound in (low, high)):
                raise ValueError(f"bounds must be numbers, got {groups[1]!r} {groups[2]!r}")
            if low > high:
                raise ValueError(f"low {low} is above high {high}")
            return Directive(kind, key=groups[0], low=float(low), high=float(high), line=line)
        if kind == "avoid":
            return Directive(kind, key=groups[0], op=groups[1], value=parse_value(groups[2]), line=line)
        return Directive(kind, key=groups[0], value=parse_value(groups[1]), line=line)
    except yaml.YAMLError as error:
        raise ValueError(f"value is not readable YAML ({error.__class__.__name__})") from error


def parse_directives(text: str, first_line: int = 1, path: str = "") -> tuple[list[Directive], list[Problem]]:
    """Directives from the Directives section's text; ``first_line`` is the line of its first text line."""
    directives: list[Directive] = []
    problems: list[Problem] = []
    for offset, line in enumerate(_blank_comments(text).splitlines()):
        bullet = BULLET_RE.match(line)
        if not bullet:
            continue
        body = bullet.group(1).split(" #", 1)[0].replace("`", "").strip()
        number = first_line + offset
        try:
            directives.append(parse_directive(body, number))
        except ValueError as error:
            problems.append(Problem(number, f"directive {body!r} ignored: {error}", path))
    return directives, problems

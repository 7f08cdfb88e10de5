"""Validation of YAML documents a person writes (specs, playbooks): every error names file and key.

`Reader` checks one value at a time and raises `SpecError("FILE: KEY: reason")`, one line,
so a bad document stops before anything runs with a message that says what to fix.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from memory.errors import SpecError


def show(value: Any) -> str:
    """A value as an error message quotes it: strings as written, other values with their type."""
    return repr(value) if isinstance(value, str) else f"{value!r} ({type(value).__name__})"


def _one_line(key: str) -> str:
    return key if not key or key.splitlines() == [key] else repr(key)


class Reader:
    """Validation helpers that know the file name, so every error names file and key."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, key: str, reason: str) -> SpecError:
        """The error for ``key``; a key typed with a line break in it still gives one line."""
        return SpecError(f"{self.path}: {_one_line(key) or 'top level'}: {reason}")

    def mapping(self, key: str, value: Any, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
        """``value`` checked as a mapping with these keys; with no keys named, any keys are allowed."""
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a mapping, got {show(value)}")
        prefix = f"{key}." if key else ""
        known = required + optional
        for name in value:
            if known and name not in known:
                raise self.fail(f"{prefix}{name}", f"unknown key (known: {', '.join(known)})")
        for name in required:
            if name not in value:
                raise self.fail(f"{prefix}{name}", "missing")
        return value

    def listing(self, key: str, value: Any) -> list:
        if not isinstance(value, list):
            raise self.fail(key, f"must be a list, got {show(value)}")
        return value

    def number(
        self, key: str, value: Any, *, integer: bool = False, minimum: float | None = None, above: float | None = None
    ) -> float | int:
        kind = "an integer" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            raise self.fail(key, f"must be {kind}, got {show(value)}")
        if not math.isfinite(value):
            raise self.fail(key, f"must be finite, got {value}")
        if minimum is not None and value < minimum:
            raise self.fail(key, f"must be >= {minimum}, got {value}")
        if above is not None and value <= above:
            raise self.fail(key, f"must be > {above}, got {value}")
        return value

    def text(self, key: str, value: Any, choices: tuple[str, ...] = ()) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"must be a non-empty string, got {show(value)}")
        if choices and value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def boolean(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {show(value)}")
        return value

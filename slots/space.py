"""The search space and the slots' fixed values: what may vary, within which bounds.

`Parameter` is one searchable key of the trainer config (dotted path such as
``training.learning_rate_node_homeostasis``); `SearchSpace` is the ordered set of them;
`SlotSet` is the key each slot keeps fixed and its value per slot.
The agent builds these from the spec; slot configs are validated against them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from memory.errors import ConfigError

PARAMETER_KINDS = ("float", "int", "choice", "bool")


@dataclass(frozen=True)
class Parameter:
    """One searchable config key.

    ``short`` is the alias used in log lines (``lr_node_homeo``); ``priority`` orders
    which parameter the policy tries first (1 = first); ``code_strategy`` marks a
    parameter that stands for a change of training code and may change only at a
    block boundary.
    """

    key: str
    kind: str
    short: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    priority: int = 100
    code_strategy: bool = False

    def validate(self, value: Any) -> Any:
        """Return ``value`` coerced to this parameter's kind, or raise ConfigError naming the key."""
        if self.kind == "choice":
            if value not in self.choices:
                raise ConfigError(f"{self.key}: {value!r} is not one of {list(self.choices)}")
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(f"{self.key}: {value!r} is not true or false")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{self.key}: {value!r} is not a number")
        if self.kind == "int":
            if float(value) != int(value):
                raise ConfigError(f"{self.key}: {value!r} is not an integer")
            value = int(value)
        else:
            value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{self.key}: {value!r} is not finite")
        if self.low is not None and value < self.low:
            raise ConfigError(f"{self.key}: {value!r} is below the lower bound {self.low}")
        if self.high is not None and value > self.high:
            raise ConfigError(f"{self.key}: {value!r} is above the upper bound {self.high}")
        return value


@dataclass(frozen=True)
class SearchSpace:
    """The ordered searchable parameters, looked up by dotted key or short alias."""

    parameters: tuple[Parameter, ...] = field(default_factory=tuple)

    def __iter__(self):
        return iter(self.parameters)

    def __contains__(self, key: str) -> bool:
        return any(p.key == key for p in self.parameters)

    def get(self, key_or_short: str) -> Parameter | None:
        for parameter in self.parameters:
            if key_or_short in (parameter.key, parameter.short):
                return parameter
        return None

    def by_priority(self) -> list[Parameter]:
        """For display: by priority, then by key."""
        return sorted(self.parameters, key=lambda p: (p.priority, p.key))

    def priority_places(self) -> dict[str, int]:
        """Each key's place among the distinct priorities (0: first). Equal priorities share a place, so
        a spec that sets none (every one 100) or sets them all equal states no preference: the keys'
        order is not a prior."""
        levels = sorted({p.priority for p in self.parameters})
        return {p.key: levels.index(p.priority) for p in self.parameters}


@dataclass(frozen=True)
class SlotSet:
    """The config key each slot keeps fixed, and its value for slot 0, 1, ..."""

    key: str
    values: tuple[Any, ...]

    @property
    def short(self) -> str:
        return self.key.rsplit(".", 1)[-1]

    def label(self, slot: int) -> str:
        """The text of the Slot line's parenthesis, e.g. ``homeostasis_time_step=4``."""
        return f"{self.short}={self.values[slot]}"

"""What a person's directives mean for the configs the agent may run.

`memory/directives.py` reads the ``## Directives`` bullets; this module owns what they
do to a spec's search space: whether a directive can apply at all (`problem`; one that
cannot is reported with its line and ignored, so a value the space refuses never leaves
a slot idle or stops the daemon), whether a config obeys them (`allowed`: pin, avoid,
bound) and a config with them applied (`enforce`: pins set, bounds clipped). The
node directives (prefer-parent, freeze) are read by the policy.
"""

from __future__ import annotations

import math
import operator
from typing import Any

from agent.history import is_number
from memory.directives import Directive
from memory.errors import ConfigError, Problem
from slots.space import Parameter, SearchSpace

AVOID_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
VALUE_KINDS = ("pin", "try", "bound", "avoid")


class DirectiveRules:
    """The directives' checks against one search space."""

    def __init__(self, space: SearchSpace):
        self.space = space

    def problem(self, directive: Directive) -> str:
        """Why a well-formed directive cannot apply to this search space ('' when it can)."""
        if directive.kind not in VALUE_KINDS:
            return ""
        parameter = self.space.get(directive.key or "")
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

    def usable(self, directives: list[Directive], path: str = "") -> tuple[list[Directive], list[Problem]]:
        """The directives that apply, and a problem (with its line) for each that does not."""
        usable, problems = [], []
        for directive in directives:
            reason = self.problem(directive)
            if reason:
                message = f"directive {directive.kind} {directive.key} ignored: {reason}"
                problems.append(Problem(directive.line, message, path))
            else:
                usable.append(directive)
        return usable, problems

    def allowed(self, params: dict[str, Any], directives: list[Directive]) -> bool:
        """True when ``params`` obeys every pin, avoid and bound directive on a searched key."""
        for directive in directives:
            parameter = self._parameter(directive, params)
            if parameter is None:
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
            parameter = self._parameter(directive, params)
            if parameter is None:
                continue
            if directive.kind == "pin":
                params[parameter.key] = directive.value
            elif directive.kind == "bound":
                value = params[parameter.key]
                clipped = min(max(value, directive.low), directive.high)
                if clipped != value:
                    params[parameter.key] = typed(parameter, clipped)
        return params

    def _parameter(self, directive: Directive, params: dict[str, Any]) -> Parameter | None:
        parameter = self.space.get(directive.key or "")
        return parameter if parameter is not None and parameter.key in params else None


def typed(parameter: Parameter, value: float) -> Any:
    """``value`` as the parameter stores it: an int, or a float to 3 significant digits."""
    return int(round(value)) if parameter.kind == "int" else round_significant(float(value))


def round_significant(value: float, digits: int = 3) -> float:
    """``value`` to ``digits`` significant digits, so log lines and configs agree exactly."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))


def _avoided(value: Any, directive: Directive) -> bool:
    try:
        return AVOID_OPS[directive.op](value, directive.value)
    except TypeError:
        return False

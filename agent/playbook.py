"""Playbooks: a trainer's strategy table as data (agent/playbooks/<name>.yaml).

A playbook lists rules, each a condition on the parent node's metrics and on the most
recent log entries, and the action it triggers (mode, preferred parameters and
directions, step size, code strategies to switch to at a block boundary). The first
rule that matches wins; `default` applies otherwise. The format is described at the top
of agent/playbooks/metabolism.yaml. `Playbook.generic()` is the empty playbook used when
a spec names none: only the generic rules of agent/policy.py then apply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.history import NodeRecord
from agent.validation import Reader
from memory.errors import SpecError

PLAYBOOK_DIR = Path(__file__).resolve().parent / "playbooks"
PLAYBOOK_SUFFIXES = (".yaml", ".yml")
STEPS = ("small", "normal", "big")
DIRECTIONS = ("up", "down", "toward_target", "any")
METRIC_TESTS = ("below", "above", "abs_below", "between", "outside")


@dataclass(frozen=True)
class Preference:
    param: str  # short alias or dotted key
    direction: str = "any"


@dataclass(frozen=True)
class Action:
    """What a matched rule asks for."""

    mode: str
    step: str = "normal"
    prefer: tuple[Preference, ...] = ()
    code_strategies: tuple[Any, ...] = ()
    code_only: bool = False
    fallback: Action | None = None
    rule: str = "default"


@dataclass(frozen=True)
class Condition:
    metric: str = ""
    test: str = ""  # one of METRIC_TESTS, or "status"
    value: Any = None

    def holds(self, record: NodeRecord) -> bool:
        if self.test == "status":
            return record.status == self.value
        observed = record.metrics.get(self.metric, math.nan)
        if math.isnan(observed):
            return False
        if self.test == "below":
            return observed < self.value
        if self.test == "above":
            return observed > self.value
        if self.test == "abs_below":
            return abs(observed) < self.value
        low, high = self.value
        inside = low <= observed <= high
        return inside if self.test == "between" else not inside


@dataclass(frozen=True)
class Rule:
    name: str
    action: Action
    parent: tuple[Condition, ...] = ()
    recent_count: int = 0
    recent_each: tuple[Condition, ...] = ()

    def matches(self, parent: NodeRecord | None, recent: list[NodeRecord]) -> bool:
        """True when the parent's metrics and the last ``recent_count`` entries all satisfy the rule."""
        if self.parent and (parent is None or not all(c.holds(parent) for c in self.parent)):
            return False
        if self.recent_count:
            window = recent[-self.recent_count :]
            if len(window) < self.recent_count:
                return False
            if not all(c.holds(record) for record in window for c in self.recent_each):
                return False
        return True


@dataclass(frozen=True)
class Playbook:
    name: str
    rules: tuple[Rule, ...] = ()
    default: Action = Action(mode="exploit")
    strategies: dict[str, tuple[int, str]] = field(default_factory=dict)  # token -> (number, name)
    primary_target: float = 1.0

    @classmethod
    def generic(cls) -> Playbook:
        return cls(name="generic")

    def decide(self, parent: NodeRecord | None, recent: list[NodeRecord]) -> Action:
        """The action of the first rule that matches, else the default."""
        for rule in self.rules:
            if rule.matches(parent, recent):
                return rule.action
        return self.default

    def strategy_text(self, value: Any) -> str:
        """``1 residual supervision + 2 signal amplification`` for ``residual+amplification``."""
        named = [self.strategies.get(token.strip(), (None, token.strip())) for token in str(value).split("+")]
        numbered = [f"{number} {name}" for number, name in named if number] or [name for _, name in named]
        return " + ".join(numbered)


def playbook_path(name: str, spec_dir: Path) -> Path | None:
    """Where the playbook ``name`` of a spec lives: a file path (``*.yaml``, relative to the
    spec's folder) or the name of a built-in one (agent/playbooks/<name>.yaml); None if absent."""
    if name.endswith(PLAYBOOK_SUFFIXES):
        path = (spec_dir / name).resolve()
    else:
        path = PLAYBOOK_DIR / f"{name}.yaml"
    return path if path.is_file() else None


def builtin_playbooks() -> list[str]:
    return sorted(p.stem for p in PLAYBOOK_DIR.glob("*.yaml"))


def load_playbook(name: str) -> Playbook:
    """The playbook ``name`` (a built-in name or a file path), validated; SpecError names the file, key and reason."""
    if not name:
        return Playbook.generic()
    path = Path(name) if name.endswith(PLAYBOOK_SUFFIXES) else PLAYBOOK_DIR / f"{name}.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise SpecError(f"{path}: not valid YAML ({' '.join(str(error).split())})") from None
    parser = _Parser(path)
    data = parser.mapping("", raw, ("rules", "default"), ("strategies", "primary_target"))
    rules = tuple(parser.rule(f"rules[{i}]", item) for i, item in enumerate(parser.listing("rules", data["rules"])))
    strategies = {}
    for token, info in parser.mapping("strategies", data.get("strategies", {}), ()).items():
        info = parser.mapping(f"strategies.{token}", info, ("number", "name"))
        strategies[str(token)] = (int(info["number"]), str(info["name"]))
    return Playbook(
        name=name,
        rules=rules,
        default=parser.action("default", data["default"], "default"),
        strategies=strategies,
        primary_target=float(data.get("primary_target", 1.0)),
    )


class _Parser(Reader):
    """Validation of a playbook file: rules, conditions and actions; every error names the file and key."""

    def rule(self, key: str, value: Any) -> Rule:
        data = self.mapping(
            key, value, ("name", "when", "mode"), ("step", "prefer", "code_strategies", "code_only", "fallback")
        )
        when = self.mapping(f"{key}.when", data["when"], (), ("parent", "recent"))
        parent = tuple(
            self.condition(f"{key}.when.parent[{i}]", c)
            for i, c in enumerate(self.listing(f"{key}.when.parent", when.get("parent", [])))
        )
        count, each = 0, ()
        if "recent" in when:
            recent = self.mapping(f"{key}.when.recent", when["recent"], ("count", "each"))
            count = recent["count"]
            if not isinstance(count, int) or count < 1:
                raise self.fail(f"{key}.when.recent.count", "must be a positive integer")
            each = tuple(
                self.condition(f"{key}.when.recent.each[{i}]", c)
                for i, c in enumerate(self.listing(f"{key}.when.recent.each", recent["each"]))
            )
        action_data = {k: v for k, v in data.items() if k not in ("name", "when")}
        return Rule(
            name=str(data["name"]),
            action=self.action(key, action_data, str(data["name"])),
            parent=parent,
            recent_count=count,
            recent_each=each,
        )

    def condition(self, key: str, value: Any) -> Condition:
        data = self.mapping(key, value, (), ("status", "metric") + METRIC_TESTS)
        if "status" in data:
            return Condition(test="status", value=str(data["status"]))
        tests = [t for t in METRIC_TESTS if t in data]
        if "metric" not in data or len(tests) != 1:
            raise self.fail(key, f"needs a metric and exactly one of {', '.join(METRIC_TESTS)}")
        test = tests[0]
        bound = data[test]
        if test in ("between", "outside"):
            if not (isinstance(bound, list) and len(bound) == 2 and all(isinstance(b, (int, float)) for b in bound)):
                raise self.fail(f"{key}.{test}", "must be [low, high]")
            bound = (float(bound[0]), float(bound[1]))
        elif not isinstance(bound, (int, float)):
            raise self.fail(f"{key}.{test}", "must be a number")
        return Condition(metric=str(data["metric"]), test=test, value=bound)

    def action(self, key: str, data: Any, rule: str) -> Action:
        data = self.mapping(key, data, ("mode",), ("step", "prefer", "code_strategies", "code_only", "fallback"))
        step = data.get("step", "normal")
        if step not in STEPS:
            raise self.fail(f"{key}.step", f"must be one of {', '.join(STEPS)}")
        prefer = []
        for i, item in enumerate(self.listing(f"{key}.prefer", data.get("prefer", []))):
            item = self.mapping(f"{key}.prefer[{i}]", item, ("param",), ("direction",))
            if item.get("direction", "any") not in DIRECTIONS:
                raise self.fail(f"{key}.prefer[{i}].direction", f"must be one of {', '.join(DIRECTIONS)}")
            prefer.append(Preference(str(item["param"]), item.get("direction", "any")))
        fallback = self.action(f"{key}.fallback", data["fallback"], rule) if "fallback" in data else None
        return Action(
            mode=str(data["mode"]),
            step=step,
            prefer=tuple(prefer),
            code_strategies=tuple(self.listing(f"{key}.code_strategies", data.get("code_strategies", []))),
            code_only=bool(data.get("code_only", False)),
            fallback=fallback,
            rule=rule,
        )

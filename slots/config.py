"""Slot configs: the base trainer config + the slot's fixed value + one node's mutations.

Every config a slot runs is built and checked here before anything is written:
only search-space keys may differ from the base, frozen keys and the slot's fixed
value never change, and every searched value is inside the space's bounds or
choices. A refusal is a `ConfigError` naming the key and the reason. Keys are
dotted paths into nested mappings (``training.learning_rate``); configs keep their
key order on disk.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from memory.atomic import write_text_atomic
from memory.errors import ConfigError
from slots.space import SearchSpace, SlotSet

_REQUIRED = object()  # get_path without a default
_MISSING = object()  # a key absent from a config


def get_path(config: Mapping[str, Any], key: str, default: Any = _REQUIRED) -> Any:
    """The value at dotted ``key``; ``default`` if given and the key is absent, else KeyError."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            if default is _REQUIRED:
                raise KeyError(key)
            return default
        node = node[part]
    return node


def set_path(config: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``config`` with ``key`` set to ``value`` (missing sections are created)."""
    result = copy.deepcopy(dict(config))
    node = result
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            section = ".".join(parts[: depth + 1])
            raise ConfigError(f"{key}: cannot set it, {section} is a value ({child!r}), not a section")
        node = child
    node[parts[-1]] = value
    return result


def frozen_by(key: str, frozen: Sequence[str]) -> str | None:
    """The frozen entry that covers ``key`` (the key itself or a section above it), or None."""
    for entry in frozen:
        if key == entry or key.startswith(entry + "."):
            return entry
    return None


def _check_searchable(
    key: str, value: Any, slots: SlotSet, slot: int, space: SearchSpace, frozen: Sequence[str]
) -> Any:
    """``value`` coerced by its parameter, or ConfigError saying why ``key`` may not take it."""
    if key == slots.key:
        raise ConfigError(
            f"{key}: is the fixed value of slot {slot} ({slots.label(slot)}); a slot's fixed value is never changed"
        )
    entry = frozen_by(key, frozen)
    if entry is not None:
        where = "" if entry == key else f" (section {entry} is frozen)"
        raise ConfigError(f"{key}: is frozen{where}; frozen keys are never changed")
    parameter = space.get(key)
    if parameter is None or parameter.key != key:
        raise ConfigError(f"{key}: is not in the search space; only search-space keys may differ from the base config")
    return parameter.validate(value)


def _check_slot(slots: SlotSet, slot: int) -> Any:
    if not 0 <= slot < len(slots.values):
        raise ConfigError(f"slot {slot}: does not exist; the spec has slots 0-{len(slots.values) - 1}")
    return slots.values[slot]


def build_slot_config(
    base: Mapping[str, Any],
    slots: SlotSet,
    slot: int,
    mutations: Mapping[str, Any],
    space: SearchSpace,
    frozen: Sequence[str],
) -> dict[str, Any]:
    """The config slot ``slot`` runs: ``base`` + the slot's fixed value + ``mutations``.

    Mutation keys are dotted search-space keys or their short aliases. ``base`` is never
    modified. Raises ConfigError naming the first refused key: the slot key, a frozen key
    (a frozen entry may be a whole section such as ``simulation``), a key outside the
    search space, or a value outside the parameter's bounds or choices.
    """
    config = set_path(base, slots.key, _check_slot(slots, slot))
    for name, value in mutations.items():
        parameter = space.get(name)
        key = parameter.key if parameter is not None else name
        config = set_path(config, key, _check_searchable(key, value, slots, slot, space, frozen))
    return config


def _leaves(config: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) for every non-mapping value; an empty mapping is a leaf."""
    if isinstance(config, Mapping) and config:
        for name, value in config.items():
            yield from _leaves(value, f"{prefix}{name}" if not prefix else f"{prefix}.{name}")
    elif prefix:
        yield prefix, config


def _same(a: Any, b: Any) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def validate_config(
    config: Mapping[str, Any],
    base: Mapping[str, Any],
    slots: SlotSet,
    slot: int,
    space: SearchSpace,
    frozen: Sequence[str],
) -> None:
    """Check a config read back from disk (perhaps edited by a person) for slot ``slot``.

    The slot key must hold the slot's value; every other leaf that differs from ``base``
    (changed, added or removed) must be a search-space key whose value is valid.
    Raises ConfigError naming the first offending key.
    """
    expected = _check_slot(slots, slot)
    actual = get_path(config, slots.key, _MISSING)
    if actual is _MISSING or not _same(actual, expected):
        shown = "missing" if actual is _MISSING else repr(actual)
        raise ConfigError(f"{slots.key}: is {shown} but slot {slot} runs with {expected!r}")
    config_leaves = dict(_leaves(config))
    base_leaves = dict(_leaves(base))
    for key in list(config_leaves) + [k for k in base_leaves if k not in config_leaves]:
        if key == slots.key:
            continue
        value = config_leaves.get(key, _MISSING)
        if _same(value, base_leaves.get(key, _MISSING)):
            continue
        if value is _MISSING:
            raise ConfigError(f"{key}: is missing; it is in the base config and may not be removed")
        _check_searchable(key, value, slots, slot, space, frozen)


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping in YAML file ``path``; ConfigError naming the file if it is absent or bad."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read it ({error.strerror})") from None
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: not valid YAML{where} ({problem})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping of config sections, found {type(config).__name__}")
    return config


def write_config(path: str | os.PathLike, config: Mapping[str, Any]) -> None:
    """Write ``config`` as YAML atomically, keys in their given order."""
    write_text_atomic(path, yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=False))


def config_hash(config: Mapping[str, Any]) -> str:
    """12 hex digits identifying the config's content (key order does not matter)."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]

"""Parameter effects: the agent's mutation ledger (agent/evidence.py), summarised for a person.

Owns the rows of REPORT.md's parameter-effects table: per parameter, direction and slot,
how many one-parameter mutations there were, how many beat their parent, and the mean
change in reward against the parent's pooled reward (a failed child counts as losing
the parent's whole reward, as the ledger counts it).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from agent.evidence import Effect, Ledger
from agent.review.folder import ALL_SLOTS, ExplorationFiles


@dataclass(frozen=True)
class EffectRow:
    parameter: str  # short alias
    direction: str  # up | down | =value
    slot: str  # slot name, or ALL_SLOTS
    effects: tuple[Effect, ...]

    @property
    def count(self) -> int:
        return len(self.effects)

    @property
    def mean_delta(self) -> float:
        return statistics.fmean(effect.delta for effect in self.effects)

    @property
    def improved(self) -> int:
        return sum(1 for effect in self.effects if effect.delta > 0)

    @property
    def failed(self) -> int:
        return sum(1 for effect in self.effects if effect.failed)


def ledger(files: ExplorationFiles) -> Ledger:
    """The agent's ledger over the log's finished runs, parents scored by pooled mean."""
    pooled = {node_id: node.mean for node_id, node in files.tree.nodes.items()}
    return Ledger([run.record for run in files.runs], pooled)


def effect_rows(files: ExplorationFiles) -> list[EffectRow]:
    """One row per (parameter, direction, slot) plus an all-slots row when several slots share it.

    Sorted by parameter (the space's priority order), direction, then slot.
    """
    slot_names = {run.entry.slot: run.slot_name for run in files.runs}
    groups: dict[tuple[str, str], dict[str, list[Effect]]] = defaultdict(lambda: defaultdict(list))
    for effect in ledger(files).effects:
        slot = None if effect.slot < 0 else effect.slot
        groups[(effect.key, effect.direction)][slot_names.get(slot, "no slot")].append(effect)
    order = {parameter.key: index for index, parameter in enumerate(files.space.by_priority())}
    rows = []
    for (key, direction), by_slot in sorted(groups.items(), key=lambda item: (order.get(item[0][0], 0), item[0])):
        for slot, effects in sorted(by_slot.items()):
            rows.append(EffectRow(files.short(key), direction, slot, tuple(effects)))
        if len(by_slot) > 1:
            every = tuple(effect for effects in by_slot.values() for effect in effects)
            rows.append(EffectRow(files.short(key), direction, ALL_SLOTS, every))
    return rows

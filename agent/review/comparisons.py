"""Group comparisons over the runs: per slot (which rollout length works best) and per strategy.

Owns the numbers of REPORT.md's slot table and strategy-outcome table. A run is one
log entry (replicates included); its reward is the objective's (or the raw metric's)
for that run alone; a failure has no reward and is counted, never averaged as 0.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from agent.playbook import Playbook, load_playbook
from agent.review.folder import ALL_SLOTS, ExplorationFiles, Run
from ucb.rewards import CONVERGED


@dataclass(frozen=True)
class GroupStats:
    """How a group of runs went."""

    name: str
    runs: int
    failed: int
    best: Run | None
    median: float | None
    converged: int
    first_converged: Run | None
    runs_to_first_converged: int | None  # 1 = the group's first run converged

    @property
    def best_reward(self) -> float | None:
        return self.best.reward if self.best else None


def group_stats(name: str, runs: list[Run]) -> GroupStats:
    """Counts, best and median reward, and the first converged run of ``runs`` (in log order)."""
    scored = [run for run in runs if run.reward is not None]
    converged = [index for index, run in enumerate(runs) if run.entry.status == CONVERGED]
    first = converged[0] if converged else None
    return GroupStats(
        name=name,
        runs=len(runs),
        failed=len(runs) - len(scored),
        best=max(scored, key=lambda run: run.reward, default=None),
        median=statistics.median(run.reward for run in scored) if scored else None,
        converged=len(converged),
        first_converged=runs[first] if first is not None else None,
        runs_to_first_converged=None if first is None else first + 1,
    )


def by_slot(files: ExplorationFiles) -> list[GroupStats]:
    """One row per slot, in slot order; empty when the log has no Slot: lines."""
    groups: dict[int, list[Run]] = defaultdict(list)
    for run in files.runs:
        if run.entry.slot is not None:
            groups[run.entry.slot].append(run)
    return [group_stats(runs[0].slot_name, runs) for _, runs in sorted(groups.items())]


def _playbook(files: ExplorationFiles) -> Playbook | None:
    if files.spec is None or not files.spec.exploration.playbook:
        return None
    return load_playbook(files.spec.exploration.playbook)


def strategy_names(playbook: Playbook | None) -> list[str]:
    """Every strategy the playbook knows (tried or not), in its numbering; [] without one."""
    if playbook is None:
        return []
    ordered = sorted(playbook.strategies, key=lambda token: playbook.strategies[token][0])
    return [playbook.strategy_text(token) for token in ordered]


def strategy_parts(playbook: Playbook | None, run: Run) -> list[str]:
    """The strategies a run used: each token of a ``+``-joined code strategy, by its playbook name
    (without a playbook, the parts of the Strategy: line)."""
    if playbook is not None:
        return [playbook.strategy_text(token.strip()) for token in run.strategy.split("+")]
    return [part.strip() for part in run.strategy.split(" + ")]


def by_strategy(files: ExplorationFiles) -> dict[str, dict[str, GroupStats]]:
    """strategy -> {slot name or "all slots" -> stats}; a combined strategy counts for each part."""
    playbook = _playbook(files)
    groups: dict[str, dict[str, list[Run]]] = {name: {} for name in strategy_names(playbook)}
    for run in files.runs:
        for part in strategy_parts(playbook, run):
            cells = groups.setdefault(part, {})
            cells.setdefault(run.slot_name, []).append(run)
            cells.setdefault(ALL_SLOTS, []).append(run)
    return {
        name: {slot: group_stats(f"{name} / {slot}", runs) for slot, runs in cells.items()}
        for name, cells in groups.items()
    }

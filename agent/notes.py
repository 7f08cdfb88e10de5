"""What the agent writes into the working memory's sections after every entry.

Established Principles (regime changes first: a decisive step that held across slots or
replicates, with its iterations, effect on the primary metric and spread, from
agent/lessons.py; then directions with their evidence: iterations, mean reward change,
how often it held), Strategy Outcomes (per code strategy and slot, and per mode), Open Questions
(the open problem: the best node's reward term furthest from its target; parameter x slot
pairs never tried, mixed evidence, unreplicated best), Current Block,
and the Previous Block Summary of the last finished block. The person's Directives and
any section ucbx does not know are left as they are by `memory.working_memory`.
"""

from __future__ import annotations

from collections import defaultdict
from statistics import mean

from agent.evidence import Ledger
from agent.history import NodeRecord
from agent.lessons import open_problem, regime_changes, regime_line
from agent.snapshot import Snapshot
from agent.spec import Spec
from memory.working_memory import WorkingMemory

MAX_PRINCIPLES = 15
MAX_UNTRIED = 8
MAX_LISTED = 8  # iterations listed as evidence of one line


def block_records(snapshot: Snapshot, number: int, size: int) -> list[NodeRecord]:
    """The finished records of block ``number`` (iterations counted from 1)."""
    first, last = (number - 1) * size + 1, number * size
    return [r for r in snapshot.finished if first <= r.iteration <= last]


def update_memory(memory: WorkingMemory, spec: Spec, snapshot: Snapshot) -> None:
    """Rewrite the agent's sections of ``memory`` in place, from the snapshot of the folder."""
    ledger = snapshot.ledger
    memory.set("Established Principles", principles(spec, ledger, snapshot))
    memory.set("Strategy Outcomes", strategy_outcomes(spec, snapshot))
    memory.set("Open Questions", open_questions(spec, snapshot, ledger))
    size = spec.exploration.n_iter_block
    written = snapshot.entries_written
    memory.set("Current Block", current_block(spec, snapshot, written // size + 1))
    if written >= size:
        memory.set("Previous Block Summary", block_summary(spec, snapshot, written // size))


def _short(spec: Spec, key: str) -> str:
    parameter = spec.space.get(key)
    return parameter.short if parameter else key


def _iters(records) -> str:
    return ", ".join(str(r.iteration) for r in records)


def principles(spec: Spec, ledger: Ledger, snapshot: Snapshot | None = None) -> str:
    regimes = regime_changes(snapshot) if snapshot is not None else []
    found = ledger.principles()[: MAX_PRINCIPLES - len(regimes)]
    if not found and not regimes:
        return "- none yet (a direction needs 2 effects, 75% of them the same sign)"
    lines = [f"{number}. {regime_line(spec, regime)}" for number, regime in enumerate(regimes, start=1)]
    for number, principle in enumerate(found, start=len(regimes) + 1):
        direction = (
            principle.direction if not principle.direction.startswith("=") else f"set to {principle.direction[1:]}"
        )
        verdict = "helps" if principle.helps else "hurts"
        lines.append(
            f"{number}. **{_short(spec, principle.key)} {direction} {verdict}**: reward "
            f"{principle.mean_delta:+.3f} on average, held {principle.held}/{len(principle.effects)} "
            f"(iters {_iters(principle.effects[-MAX_LISTED:])})"
        )
    return "\n".join(lines)


def strategy_outcomes(spec: Spec, snapshot: Snapshot) -> str:
    code = next((p for p in spec.space if p.code_strategy), None)
    lines = []
    if code is not None:
        lines += [
            "| strategy | slot | runs | failed | mean reward | best (node) |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        groups: dict[tuple, list[NodeRecord]] = defaultdict(list)
        for record in snapshot.finished:
            groups[(str(record.params.get(code.key, "?")), record.slot)].append(record)
        for (value, slot), records in sorted(groups.items()):
            lines.append(_outcome_row(spec, value, slot, records))
        lines.append("")
    by_mode: dict[str, list[float]] = defaultdict(list)
    for record in snapshot.finished:
        parent_reward = snapshot.pooled.get(record.parent) if record.parent is not None else None
        if record.replicate_of is None and parent_reward is not None:
            by_mode[record.mode].append((record.reward or 0.0) - parent_reward)
    for mode, deltas in sorted(by_mode.items()):
        improved = sum(1 for d in deltas if d > 0)
        lines.append(
            f"- {mode}: {len(deltas)} children, {improved} beat their parent, mean reward change {mean(deltas):+.3f}"
        )
    return "\n".join(lines) or "- no finished runs yet"


def _outcome_row(spec: Spec, value: str, slot: int, records: list[NodeRecord]) -> str:
    scored = [r for r in records if r.reward is not None]
    label = spec.slots.label(slot) if 0 <= slot < spec.n_slots else str(slot)
    if not scored:
        return f"| {value} | {label} | {len(records)} | {len(records)} | - | - |"
    best = max(scored, key=lambda r: r.reward)
    return (
        f"| {value} | {label} | {len(records)} | {len(records) - len(scored)} | "
        f"{mean(r.reward for r in scored):.3f} | {best.reward:.3f} ({best.node_id}) |"
    )


def open_questions(spec: Spec, snapshot: Snapshot, ledger: Ledger) -> str:
    problem = open_problem(spec, snapshot)
    lines = [f"- {problem}"] if problem else []
    for slot in range(spec.n_slots):
        untried = [p.short for p in spec.space.by_priority() if not ledger.tried(p.key, slot)]
        if untried:
            shown = ", ".join(untried[:MAX_UNTRIED])
            lines.append(f"- {spec.slots.label(slot)}: never mutated here: {shown}")
    for key, direction in ledger.open_directions():
        effects = ledger.matching(key, direction)
        helped = sum(1 for e in effects if e.delta > 0)
        lines.append(
            f"- {_short(spec, key)} {direction}: mixed evidence, reward {mean(e.delta for e in effects):+.3f} "
            f"on average, helped {helped}/{len(effects)} (iters {_iters(effects[-MAX_LISTED:])})"
        )
    leader = snapshot.leader
    if leader is not None and leader.n_replicates < snapshot.tree.replicates_wanted:
        lines.append(
            f"- is node {leader.id} (reward {leader.mean:.3f}) real? "
            f"{leader.n_replicates} of {snapshot.tree.replicates_wanted} seed replicates so far"
        )
    return "\n".join(lines) or "- none"


def _entry_line(spec: Spec, snapshot: Snapshot, record: NodeRecord) -> str:
    value = record.metrics.get(spec.objective.primary)
    metric = f"{spec.objective.primary}={value:.3g}, " if value is not None else ""
    reward = "failed" if record.reward is None else f"reward={record.reward:.3f}"
    parent = "root" if record.parent is None else record.parent
    return (
        f"- Iter {record.iteration} (node {record.node_id}, parent {parent}, slot_{record.slot}): "
        f"{record.status}, {metric}{reward}; {record.mode}: {snapshot.mutations.get(record.node_id, '')}"
    )


def current_block(spec: Spec, snapshot: Snapshot, number: int) -> str:
    size = spec.exploration.n_iter_block
    lines = [f"Block {number} (iters {(number - 1) * size + 1}-{number * size})"]
    lines += [_entry_line(spec, snapshot, r) for r in block_records(snapshot, number, size)] or ["- no entries yet"]
    lines.append(f"Best so far: {best_line(snapshot)}")
    return "\n".join(lines)


def block_summary(spec: Spec, snapshot: Snapshot, number: int) -> str:
    size = spec.exploration.n_iter_block
    records = block_records(snapshot, number, size)
    counts = defaultdict(int)
    for record in records:
        counts[record.status] += 1
    tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    lines = [f"Block {number} (iters {(number - 1) * size + 1}-{number * size}): {tally}"]
    scored = [r for r in records if r.reward is not None]
    if scored:
        top = max(scored, key=lambda r: r.reward)
        lines.append(
            f"- best of the block: node {top.node_id} reward {top.reward:.3f} "
            f"({top.mode}: {snapshot.mutations.get(top.node_id, '')})"
        )
    failures = [r for r in records if r.failure]
    if failures:
        lines.append("- failures: " + "; ".join(f"node {r.node_id} {r.failure.split(':')[0]}" for r in failures))
    return "\n".join(lines)


def best_line(snapshot: Snapshot) -> str:
    """The best node in one line (status, memory, live view), and the leader awaiting replicates."""
    best, leader = snapshot.best, snapshot.leader
    if leader is None:
        return "none yet"
    wanted = snapshot.tree.replicates_wanted
    text = "none confirmed yet" if best is None else _node_text(best, wanted)
    if leader is not best:
        waiting = f"awaiting replicates ({leader.n_replicates} of {wanted})"
        text += f"; node {leader.id} leads (reward {leader.mean:.3f}), {waiting}"
    return text


def _node_text(node, wanted: int) -> str:
    spread = f" ± {node.spread:.3f}" if len(node.rewards) > 1 else ""
    return f"node {node.id} (reward {node.mean:.3f}{spread}, {node.n_replicates} of {wanted} replicates)"

"""What a campaign learned, beyond the ledger's per-direction averages (issue 17, item 5).

Two readings of the finished runs for the working memory:

- **regime changes**: a one-parameter step whose reward moved by at least
  ``DECISIVE_REWARD`` (up or down) and that held: the runs on the step's new side (value
  >= the new value for a step up, <= for a step down, equal for a choice) differ from the
  runs on its old side by at least half that, in the same direction, and the new side
  spans at least two slots or holds a replicate of the step's child. The evidence is the
  step's iterations, the primary metric on both sides (mean and standard deviation) and
  the reward difference. A later plateau of small, mixed steps in the same direction
  (lr_node 3e-5 -> 5e-3 with no effect) does not undo it; those stay mixed evidence.
- **the open problem**: the reward term of the best node (the leader while none is
  confirmed) that is furthest below its full score, when it scores below
  ``OPEN_PROBLEM_SCORE``: the part of the objective that is still wrong.

Read only; agent/notes.py writes the lines into the memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import fmean, pstdev
from typing import Any

from agent.history import NodeRecord, format_value, is_number
from agent.snapshot import Snapshot
from agent.spec import Spec

DECISIVE_REWARD = 0.15  # a one-parameter step that moves the reward this much is a candidate regime change
MIN_SLOTS = 2  # the new side must span this many slots (or hold a replicate of the child)
OPEN_PROBLEM_SCORE = 0.8  # a best node's term scoring below this (of 1) is an open problem
MAX_REGIMES = 5
MAX_CANDIDATES = 32  # decisive steps examined per rewrite of the memory, the strongest first


@dataclass(frozen=True)
class RegimeChange:
    key: str
    old: Any
    new: Any
    steps: tuple[NodeRecord, ...]  # the decisive one-parameter steps across this boundary, first first
    old_side: tuple[NodeRecord, ...]
    new_side: tuple[NodeRecord, ...]
    reward_change: float  # mean reward, new side minus old side

    @property
    def helps(self) -> bool:
        return self.reward_change > 0


def _side(record_value: Any, old: Any, new: Any) -> str:
    """'old', 'new' or '' (between the two values, or another choice)."""
    if is_number(old) and is_number(new) and is_number(record_value):
        up = new > old
        if (record_value >= new) if up else (record_value <= new):
            return "new"
        if (record_value <= old) if up else (record_value >= old):
            return "old"
        return ""
    if record_value == new:
        return "new"
    return "old" if record_value == old else ""


def regime_changes(snapshot: Snapshot) -> list[RegimeChange]:
    """Decisive steps that held, strongest first; one per parameter and boundary."""
    scored = [r for r in snapshot.finished if r.reward is not None]
    decisive = []
    for step in scored:
        if step.change is None or step.replicate_of is not None or step.parent is None:
            continue
        parent_reward = snapshot.pooled.get(step.parent)
        if parent_reward is not None and abs(step.reward - parent_reward) >= DECISIVE_REWARD:
            decisive.append((step, parent_reward))
    # each candidate costs a pass over every run: the strongest `MAX_CANDIDATES` only, so a rewrite
    # of the memory stays linear in the log, however many decisive steps a long campaign has
    strongest = sorted(decisive, key=lambda pair: -abs(pair[0].reward - pair[1]))[:MAX_CANDIDATES]
    found: list[RegimeChange] = []
    for step, parent_reward in sorted(strongest, key=lambda pair: pair[0].iteration):
        change = step.change
        if any(r.key == change.key and _side(change.new, r.old, r.new) == "new" for r in found):
            continue  # the same boundary, already found from an earlier step
        regime = _held(snapshot, scored, step, step.reward - parent_reward)
        if regime is not None:
            found.append(regime)
    return sorted(found, key=lambda r: -abs(r.reward_change))[:MAX_REGIMES]


def _held(snapshot: Snapshot, scored: list[NodeRecord], step: NodeRecord, delta: float) -> RegimeChange | None:
    change = step.change
    sides: dict[str, list[NodeRecord]] = {"old": [], "new": []}
    for record in scored:
        side = _side(record.params.get(change.key), change.old, change.new)
        if side:
            sides[side].append(record)
    old_side, new_side = sides["old"], sides["new"]
    if not old_side or not new_side:
        return None
    replicated = any(r.replicate_of == step.node_id for r in new_side)
    if len({r.slot for r in new_side}) < MIN_SLOTS and not replicated:
        return None
    difference = fmean(r.reward for r in new_side) - fmean(r.reward for r in old_side)
    if difference * delta <= 0 or abs(difference) < DECISIVE_REWARD / 2:
        return None
    steps = [
        r
        for r in scored
        if r.change is not None
        and r.replicate_of is None
        and r.change.key == change.key
        and _side(r.change.old, change.old, change.new) == "old"
        and _side(r.change.new, change.old, change.new) == "new"
        and r.parent is not None
        and snapshot.pooled.get(r.parent) is not None
        and (r.reward - snapshot.pooled[r.parent]) * delta > 0
    ]
    return RegimeChange(change.key, change.old, change.new, tuple(steps), tuple(old_side), tuple(new_side), difference)


def _spread(records: tuple[NodeRecord, ...], metric: str) -> str:
    values = [r.metrics[metric] for r in records if math.isfinite(r.metrics.get(metric, math.nan))]
    if not values:
        return "no value"
    return f"{fmean(values):.3g} ± {pstdev(values):.2g} over {len(values)} runs"


def regime_line(spec: Spec, regime: RegimeChange) -> str:
    """``**lr_node_homeo 1e-05 -> 3e-05 helps (regime change)**: ...`` with its evidence."""
    parameter = spec.space.get(regime.key)
    short = parameter.short if parameter else regime.key
    primary = spec.objective.primary
    first = regime.steps[0]
    iterations = ", ".join(str(r.iteration) for r in regime.steps)
    slots = sorted({r.slot for r in regime.new_side})
    values = ", ".join(format_value(spec.slots.values[s]) if 0 <= s < spec.n_slots else str(s) for s in slots)
    slot_names = f"{spec.slots.key.rsplit('.', 1)[-1]} {values}"
    if is_number(regime.new) and is_number(regime.old):
        comparison, older = (">=", "<=") if regime.new > regime.old else ("<=", ">=")
    else:
        comparison = older = "="
    verdict = "helps" if regime.helps else "hurts"
    return (
        f"**{short} {format_value(regime.old)} -> {format_value(regime.new)} {verdict} (regime change)**: "
        f"first at iter {first.iteration}, decisive steps at iters {iterations}; held: {primary} "
        f"{_spread(regime.new_side, primary)} with {short} {comparison} {format_value(regime.new)} "
        f"(slots {slot_names}) vs {_spread(regime.old_side, primary)} with {short} {older} "
        f"{format_value(regime.old)}; reward {regime.reward_change:+.3f} on average"
    )


def open_problem(spec: Spec, snapshot: Snapshot) -> str:
    """The best node's reward term furthest from its full score, in one line ('' when none is short of it)."""
    node = snapshot.best or snapshot.leader
    if node is None:
        return ""
    record = snapshot.by_id.get(node.id)
    if record is None or not record.finished:
        return ""
    scores = [(term.score(record.metrics.get(term.metric, math.nan)), term) for term in spec.objective.terms]
    score, term = min(scores, key=lambda pair: pair[0])
    if score >= OPEN_PROBLEM_SCORE:
        return ""
    value = record.metrics.get(term.metric, math.nan)
    target = f"target {term.target:g}" if term.kind == "ratio" else f"full score at {term.high:g}"
    others = [f"{t.metric} {s:.2f}" for s, t in scores if t is not term]
    rest = f"; the other terms score {', '.join(others)}" if others else ""
    return (
        f"**Open problem: {term.metric}** is {value:.3g} on node {node.id} (the best), term score {score:.2f} "
        f"of 1 ({target}){rest}"
    )

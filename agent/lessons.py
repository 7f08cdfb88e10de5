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

import functools
import math
from dataclasses import dataclass
from statistics import fmean, pstdev
from typing import Any

import numpy as np

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


class _Column:
    """One parameter's values over some runs, for `_side` on all of them at once: numbers as
    floats (nan where a value is not a number), other values by a code per distinct value.
    (Integers beyond 2**53 compare as their nearest float: no search space holds one.)"""

    def __init__(self, values: list[Any]):
        self.values = values
        self.numeric = np.array([is_number(v) for v in values], dtype=bool)
        self.numbers = np.array([float(v) if is_number(v) else math.nan for v in values])
        self.codes: np.ndarray | None = None
        self._code_of: dict[Any, int] = {}
        try:
            self.codes = np.array([self._code_of.setdefault(v, len(self._code_of)) for v in values], dtype=int)
        except TypeError:  # an unhashable value: compared one by one
            self.codes = None

    def sides(self, old: Any, new: Any) -> tuple[np.ndarray, np.ndarray]:
        """(on the old side, on the new side) of the step ``old`` -> ``new``, one flag per value (`_side`)."""
        if is_number(old) and is_number(new):
            numeric = self.numeric
            up = new > old
            on_new = (self.numbers >= new) if up else (self.numbers <= new)
            on_old = ~on_new & ((self.numbers <= old) if up else (self.numbers >= old))  # new first, as in `_side`
            # a value that is not a number is compared by equality, as `_side` does
            return on_old | (~numeric & self._equal(old) & ~self._equal(new)), on_new | (~numeric & self._equal(new))
        on_new = self._equal(new)
        return ~on_new & self._equal(old), on_new

    def _equal(self, value: Any) -> np.ndarray:
        if value != value:  # nan equals nothing (a dictionary would match it by identity)
            return np.zeros(len(self.values), dtype=bool)
        if self.codes is not None:
            try:
                return self.codes == self._code_of.get(value, -1)
            except TypeError:
                pass
        return np.array([v == value for v in self.values], dtype=bool)


class _Runs:
    """The scored runs as columns, so that judging a candidate regime change costs array
    operations, not a pass of Python over every run. `steps` (the one-parameter steps whose
    parent has a pooled reward) and their `gains` are found at once; the columns of the runs
    only when a step is decisive enough to be judged."""

    def __init__(self, snapshot: Snapshot, scored: list[NodeRecord]):
        self.scored = scored
        pooled = snapshot.pooled
        self.steps = [
            r
            for r in scored
            if r.change is not None
            and r.replicate_of is None
            and r.parent is not None
            and pooled.get(r.parent) is not None
        ]
        self.gains = np.array([r.reward - pooled[r.parent] for r in self.steps], dtype=float)
        self._values: dict[str, _Column] = {}
        self._steps_of: dict[str, tuple[np.ndarray, _Column, _Column]] = {}

    @functools.cached_property
    def rewards(self) -> np.ndarray:
        return np.array([r.reward for r in self.scored], dtype=float)

    @functools.cached_property
    def slots(self) -> np.ndarray:
        return np.array([r.slot for r in self.scored])

    @functools.cached_property
    def replicate_of(self) -> np.ndarray:
        return np.array([-1 if r.replicate_of is None else r.replicate_of for r in self.scored])

    def values(self, key: str) -> _Column:
        if key not in self._values:
            self._values[key] = _Column([r.params.get(key) for r in self.scored])
        return self._values[key]

    def steps_of(self, key: str) -> tuple[np.ndarray, _Column, _Column]:
        """The indices in `steps` of the steps that changed ``key``, their old and their new values."""
        if key not in self._steps_of:
            keys = np.array([r.change.key for r in self.steps], dtype=object)
            index = np.flatnonzero(keys == key) if len(self.steps) else np.zeros(0, dtype=int)
            olds = _Column([self.steps[i].change.old for i in index])
            news = _Column([self.steps[i].change.new for i in index])
            self._steps_of[key] = (index, olds, news)
        return self._steps_of[key]


def regime_changes(snapshot: Snapshot) -> list[RegimeChange]:
    """Decisive steps that held, strongest first; one per parameter and boundary."""
    runs = _Runs(snapshot, [r for r in snapshot.finished if r.reward is not None])
    decisive = [i for i in range(len(runs.steps)) if abs(runs.gains[i]) >= DECISIVE_REWARD]
    # the strongest `MAX_CANDIDATES` only, so a rewrite of the memory stays linear in the log
    # however many decisive steps a long campaign has
    strongest = sorted(decisive, key=lambda i: -abs(runs.gains[i]))[:MAX_CANDIDATES]
    found: list[RegimeChange] = []
    for i in sorted(strongest, key=lambda i: runs.steps[i].iteration):
        change = runs.steps[i].change
        if any(r.key == change.key and _side(change.new, r.old, r.new) == "new" for r in found):
            continue  # the same boundary, already found from an earlier step
        regime = _held(runs, runs.steps[i], float(runs.gains[i]))
        if regime is not None:
            found.append(regime)
    return sorted(found, key=lambda r: -abs(r.reward_change))[:MAX_REGIMES]


def _held(runs: _Runs, step: NodeRecord, delta: float) -> RegimeChange | None:
    change = step.change
    on_old, on_new = runs.values(change.key).sides(change.old, change.new)
    if not on_old.any() or not on_new.any():
        return None
    replicated = bool(np.any(runs.replicate_of[on_new] == step.node_id))
    if len(set(runs.slots[on_new].tolist())) < MIN_SLOTS and not replicated:
        return None
    difference = fmean(runs.rewards[on_new].tolist()) - fmean(runs.rewards[on_old].tolist())
    if difference * delta <= 0 or abs(difference) < DECISIVE_REWARD / 2:
        return None
    index, olds, news = runs.steps_of(change.key)
    crossed = olds.sides(change.old, change.new)[0] & news.sides(change.old, change.new)[1]
    crossed &= runs.gains[index] * delta > 0
    steps = tuple(runs.steps[i] for i in index[crossed])
    old_side = tuple(runs.scored[i] for i in np.flatnonzero(on_old))
    new_side = tuple(runs.scored[i] for i in np.flatnonzero(on_new))
    return RegimeChange(change.key, change.old, change.new, steps, old_side, new_side, difference)


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

"""The policy: for one free slot, which node to branch from, in which mode, with which change.

Called by the driver once per free slot, after the finished jobs are logged and the UCB
scores rebuilt (in-flight nodes count as virtual visits, so two free slots rarely pick
the same parent). One decision, in this order:

1. replicate: the leader (the node that would be best, `Tree.best`) gets
   `exploration.replicates` seed replicates on its own slot before it is reported best
   (its UCB then uses the pooled mean), once the bands class it converged or partial (a
   replicate of a failed leader confirms nothing worth having: measured, BENCHMARKS.md);
2. baseline: a slot that has never run starts from the base config (seed 003's initial spread);
3. parent: a `prefer-parent` directive, else the highest UCB node that is finished, has a
   reward and is not under a `freeze`; root last. A run the bands classify `failed` but
   that has a reward is a scored result and may be a parent (UCB ranks it); only a run
   without a reward (crash, timeout, diverged, nan, lost) never is;
4. mode: generic rules that serve any trainer (a diverged child: learning rate down or
   clipping tighter, for the float parameters named so: `DIVERGED_PARAMS`), then the
   playbook's table (agent/playbooks/ or a file beside the spec), then a generic
   "flat metric: bigger step", then the playbook's default;
5. change (agent/candidates.py): one parameter, ranked by the mode's preferences, the
   spec's priority, the evidence ledger (per slot) and a surrogate fitted on the history; log-scaled values
   move by a factor; code strategies change only at a block boundary; a config that
   already ran or is in flight, or that breaks a directive, is never proposed, nor a
   value at or beyond one that diverged from the same other settings (`Ledger.diverged`).
   A diverged step does not close its direction: the half-way value between the parent
   and the diverged one (geometric for log-scaled parameters) is a candidate like the
   other steps. (Making it the next proposal right after the divergence was measured
   worse on all five synthetic tasks: BENCHMARKS.md);
6. fallback: when every single step of every parent already ran or is in flight, one
   parameter of the first parent in that order takes a value drawn at random in its
   range, so a slot is never left idle while the budget lasts.
"""

from __future__ import annotations

import random
from typing import Any

from agent.acquisition import Acquisition
from agent.candidates import RANDOM, CandidateRanker, Context
from agent.directive_rules import DirectiveRules
from agent.history import HYPERPARAMETER_ONLY, Change, NodeRecord, Proposal, signature
from agent.modes import ModeRules
from agent.playbook import Action, Playbook
from agent.snapshot import Snapshot
from agent.spec import Spec
from agent.surrogate import TUNE_EVERY, Surrogate, tune_gap
from slots.config import get_path


class Policy:
    """One `propose` per free slot.

    Exact ties between candidates are broken by a generator seeded with `exploration.seed`.
    """

    def __init__(self, spec: Spec, playbook: Playbook):
        self.spec = spec
        self.playbook = playbook
        self.rules = DirectiveRules(spec.space)
        self.rng = random.Random(spec.exploration.seed)
        self.ranker = CandidateRanker(spec, playbook, self.rng)
        self.modes = ModeRules(spec, playbook)
        self.acquisition = Acquisition(spec, self.rng)
        self._surrogate_key = -1  # finished records the cached surrogate was fitted on
        self._surrogate_fit: Surrogate | None = None
        self._tuned_at = -TUNE_EVERY  # finished records when the kernel was last tuned

    # ------------------------------------------------------------------ decisions

    def propose(self, snapshot: Snapshot, slot: int) -> Proposal | None:
        """The next run for ``slot``; None only when no allowed config is left to run."""
        taken = snapshot.taken
        replicate = self._replicate(snapshot, slot, taken)
        if replicate is not None:
            return replicate
        if not any(r.slot == slot for r in snapshot.records):
            baseline = self._baseline(snapshot, slot, taken)
            if baseline is not None:
                return baseline
        context = Context(
            taken,
            snapshot.ledger,
            self._surrogate(snapshot.finished),
            self.ranker.open_tries(snapshot),
        )
        parents = self.parent_candidates(snapshot)
        if context.surrogate is not None and not context.tries:
            proposal = self._acquire(snapshot, slot, parents, context)
            if proposal is not None:
                return proposal
        for fallback in (False, True):
            for parent in parents:
                proposal = self._mutate(snapshot, slot, parent, context, fallback)
                if proposal is not None:
                    return proposal
        return None

    def _surrogate(self, finished: list[NodeRecord]) -> Surrogate | None:
        """The surrogate of these finished nodes, refitted only when a node has finished since the last fit;
        its kernel is tuned again after `tune_gap` new results, kept fixed in between."""
        count = len(finished)
        if count == self._surrogate_key:
            return self._surrogate_fit
        tune = (
            self._surrogate_fit is None
            or count - self._tuned_at >= tune_gap(self._tuned_at)
            or count < self._surrogate_key
        )
        kernel = None if tune else self._surrogate_fit.kernel
        self._surrogate_fit = Surrogate.fit(
            self.spec.space, self.spec.n_slots, finished, self.spec.exploration.seed, kernel
        )
        self._surrogate_key = count
        if tune:
            self._tuned_at = count
        return self._surrogate_fit

    def parent_candidates(self, snapshot: Snapshot) -> list[NodeRecord | None]:
        """Parents to try in order: a prefer-parent directive, then UCB order; root last.

        A node is a parent when it is a finished original with a reward: a run the bands
        classify `failed` is one (UCB ranks it low); a crash, timeout or divergence is not.
        """
        frozen = {d.node for d in snapshot.directives if d.kind == "freeze"}
        preferred = [d.node for d in snapshot.directives if d.kind == "prefer-parent"]
        order = preferred + [node_id for node_id, _ in snapshot.ranking]
        parents: dict[int, NodeRecord] = {}
        seen: dict[int, bool] = {}
        for node_id in order:
            record = snapshot.get(node_id)
            if (
                record is None
                or not record.finished
                or record.reward is None
                or record.replicate_of is not None
                or record.node_id in parents
                or (frozen and _under_freeze(snapshot, record, frozen, seen))
            ):
                continue
            parents[record.node_id] = record
        return [*parents.values(), None]

    def at_block_boundary(self, snapshot: Snapshot) -> bool:
        """True when a block has ended since the last code change: seed 003 changes code once between
        blocks, so the first decision after a block's end may change a code strategy, and until one
        does (a replicate or a directive can take that first decision) the next may."""
        block = self.spec.exploration.n_iter_block
        blocks_ended = snapshot.entries_written // block
        code_keys = {p.key for p in self.spec.space if p.code_strategy}
        code_changes = sum(1 for r in snapshot.records if any(c.key in code_keys for c in r.changes))
        return blocks_ended > code_changes

    # ------------------------------------------------------------------ the kinds of proposal

    def _acquire(
        self, snapshot: Snapshot, slot: int, parents: list[NodeRecord | None], context: Context
    ) -> Proposal | None:
        """The acquisition engine's decision (agent/acquisition.py), or the playbook's where a row fires.

        A ``prefer-parent`` directive narrows the parents to the preferred ones. When a rule asks
        for a specific kind of change from the parent with the highest predicted reward (a
        generic rule, or a playbook row: seed 003's table), the rule decides, from that parent,
        as without a surrogate.
        """
        originals = [p for p in parents if p is not None]
        preferred = {d.node for d in snapshot.directives if d.kind == "prefer-parent"}
        if preferred & {p.node_id for p in originals}:
            originals = [p for p in originals if p.node_id in preferred]
        if not originals:
            return None
        surrogate = context.surrogate.with_pending(
            [(r.params, r.slot) for r in snapshot.records if not r.finished and r.params]
        )
        ranked = self.acquisition.parents(surrogate, originals)
        action = self.modes.decide(snapshot, ranked[0])
        if action is not self.playbook.default:
            return self._mutate(snapshot, slot, ranked[0], context, fallback=False)
        choice = self.acquisition.choose(
            surrogate,
            ranked,
            snapshot.records,
            slot,
            self.at_block_boundary(snapshot),
            context.ledger,
            lambda parent, params, changes: self._is_new(snapshot, slot, parent, params, changes, context),
            lambda parent: self._start(snapshot, parent),
        )
        if choice is None:
            return None
        pins = tuple(
            Change(key, value, choice.params[key])
            for key, value in self._raw(choice.parent).items()
            if value != self._start(snapshot, choice.parent)[key]
        )
        changes = pins + choice.changes
        strategy = HYPERPARAMETER_ONLY
        for change in changes:
            if self.spec.space.get(change.key).code_strategy:
                strategy = self.playbook.strategy_text(change.new)
        return Proposal(
            slot=slot,
            parent=choice.parent.node_id,
            mode="exploit" if choice.parent is ranked[0] else "explore",
            params=choice.params,
            seed=choice.parent.seed,
            changes=changes,
            strategy=strategy,
            rationale=choice.rationale(self.spec),
        )

    def _raw(self, parent: NodeRecord | None) -> dict[str, Any]:
        """The parent's searched values; a key added to the spec after the parent ran takes the base value."""
        return {**self.root_params(), **(parent.params if parent else {})}

    def _start(self, snapshot: Snapshot, parent: NodeRecord | None) -> dict[str, Any]:
        """The parent's values with the directives' pins and bounds applied."""
        return self.rules.enforce(self._raw(parent), snapshot.directives)

    def _is_new(
        self,
        snapshot: Snapshot,
        slot: int,
        parent: NodeRecord,
        params: dict[str, Any],
        changes: tuple[Change, ...],
        context: Context,
    ) -> bool:
        """True when a candidate never ran, is not in flight and breaks no directive."""
        if signature(self.spec.slots.values[slot], params, parent.seed) in context.taken:
            return False
        if len(changes) == 1 and (parent.node_id, changes[0]) in snapshot.in_flight_changes:
            return False
        return self.rules.allowed(params, snapshot.directives)

    def root_params(self) -> dict[str, Any]:
        return {p.key: get_path(self.spec.base, p.key) for p in self.spec.space}

    def root_seed(self) -> int | None:
        seed_key = self.spec.trainer.seed_key
        return get_path(self.spec.base, seed_key, None) if seed_key else None

    def _baseline(self, snapshot: Snapshot, slot: int, taken: set) -> Proposal | None:
        params, seed = self.rules.enforce(self.root_params(), snapshot.directives), self.root_seed()
        if signature(self.spec.slots.values[slot], params, seed) in taken:
            return None
        if not self.rules.allowed(params, snapshot.directives):
            return None
        return Proposal(
            slot=slot,
            parent=None,
            mode="explore",
            params=params,
            seed=seed,
            rationale=f"first run of slot_{slot}: the base config",
        )

    def _replicate(self, snapshot: Snapshot, slot: int, taken: set) -> Proposal | None:
        """A seed replicate of the leader, on the leader's own slot, while it has fewer than wanted."""
        wanted = snapshot.tree.replicates_wanted
        leader = snapshot.get(snapshot.leader.id) if snapshot.leader is not None else None
        if not wanted or leader is None or leader.slot != slot or leader.failed:
            return None  # a leader the bands class failed is not worth confirming yet
        count = snapshot.replicates_of(leader.node_id)
        if count >= wanted:
            return None
        seed = (leader.seed or 0) + 1000 * (count + 1)
        duplicate = signature(self.spec.slots.values[slot], leader.params, seed) in taken
        if duplicate or not self.rules.allowed(leader.params, snapshot.directives):
            return None
        return Proposal(
            slot=slot,
            parent=leader.node_id,
            mode="replicate",
            params=dict(leader.params),
            seed=seed,
            changes=(Change(self.spec.trainer.seed_key, leader.seed, seed),),
            replicate_of=leader.node_id,
            rationale=f"node {leader.node_id} leads and has {count} of {wanted} replicates",
        )

    def _mutate(
        self, snapshot: Snapshot, slot: int, parent: NodeRecord | None, context: Context, fallback: bool
    ) -> Proposal | None:
        """The best new single change of ``parent``; None if none is new.

        A step, or with ``fallback`` a random value.
        """
        action = self.modes.decide(snapshot, parent)
        boundary = self.at_block_boundary(snapshot)
        if action.code_only and not boundary:
            action = action.fallback or self.playbook.default
        if fallback:
            action = Action(
                mode="explore",
                step=RANDOM,
                prefer=action.prefer,
                rule="every step of every parent already ran or is in flight: a random value",
            )
        raw = self._raw(parent)
        base = self.rules.enforce(raw, snapshot.directives)
        seed = parent.seed if parent else self.root_seed()
        parent_id = parent.node_id if parent else None
        scored = []
        for candidate in self.ranker.candidates(raw, base, slot, action, boundary, context):
            params = {**base, candidate.parameter.key: candidate.value}
            change = Change(candidate.parameter.key, candidate.old, candidate.value)
            if (
                signature(self.spec.slots.values[slot], params, seed) in context.taken
                or (parent_id, change) in snapshot.in_flight_changes
                or not self.rules.allowed(params, snapshot.directives)
            ):
                continue
            scored.append((candidate, params, change))
        if not scored:
            return None
        scores = self.ranker.score([(c, p) for c, p, _ in scored], base, slot, parent, action, context)
        (candidate, params, change), _ = max(zip(scored, scores), key=lambda pair: pair[1])
        strategy = HYPERPARAMETER_ONLY
        if candidate.parameter.code_strategy:
            strategy = self.playbook.strategy_text(candidate.value)
        where = "root" if parent is None else f"node {parent.node_id}"
        return Proposal(
            slot=slot,
            parent=parent_id,
            mode=action.mode,
            params=params,
            seed=seed,
            changes=(change,),
            strategy=strategy,
            rationale=f"{action.rule}; from {where}",
        )


def _under_freeze(snapshot: Snapshot, record: NodeRecord, frozen: set[int], seen: dict[int, bool]) -> bool:
    """True when ``record`` or an ancestor is frozen.

    ``seen`` keeps every answer, so a pass over all nodes is O(n).
    """
    path, node, answer = [], record, False
    while node is not None:
        if node.node_id in seen:
            answer = seen[node.node_id]
            break
        if node.node_id in frozen:
            answer = True
            break
        path.append(node.node_id)
        node = snapshot.get(node.parent)
    seen.update(dict.fromkeys(path, answer))
    return answer

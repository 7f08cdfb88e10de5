"""The policy: for one free slot, which node to branch from, in which mode, with which change.

Called by the driver once per free slot, after the finished jobs are logged (in-flight
nodes are in the snapshot, so two free slots rarely pick the same thing). One decision,
in this order:

1. replicate: the leader (the node that would be best, `Tree.best`) gets
   `exploration.replicates` seed replicates on its own slot before it is reported best:
   at once when the bands class it converged (the campaign has a result to confirm), and
   a partial leader only in the budget's last launches (`worth_confirming`: the campaign ends
   on it). A partial leader is a step on the way, soon passed; confirming each one took 9
   of 48 runs in one traced campaign (BENCHMARKS.md). A failed one is never confirmed;
2. baseline: a slot that has never run starts from the base config (seed 003's initial spread);
3. engine (agent/acquisition.py), once the surrogate exists and no ``try`` directive is
   open: the candidate changes of the best-predicted parents (a ``prefer-parent``
   directive narrows them), ranked by expected improvement; a code strategy changes once
   per block (`at_block_boundary`). When a rule asks for a specific kind of change from
   the best-predicted parent (agent/modes.py: a diverged child, a flat metric, a
   playbook row), the rule decides instead, from that parent (step 4);
4. rule (agent/candidates.py), and every decision before the surrogate exists: the
   parents in UCB order (a `prefer-parent` first, root last; a run the bands classify
   `failed` but that has a reward may be a parent, a crash, timeout or divergence never),
   the mode from agent/modes.py, one change ranked by the mode's preferences, the spec's
   priority, the evidence ledger and the surrogate; log-scaled values move by a factor;
5. fallback: when every single step of every parent already ran or is in flight, one
   parameter of the first parent in that order takes a value drawn at random in its
   range, so a slot is never left idle while the budget lasts.

Never proposed: a config that already ran or is in flight, one that breaks a directive,
a value at or beyond one that diverged from the same other settings (`Ledger.diverged`).
"""

from __future__ import annotations

import random

from agent.acquisition import Acquisition, is_new, raw_of
from agent.candidates import RANDOM, CandidateRanker, Context
from agent.directive_rules import DirectiveRules
from agent.history import HYPERPARAMETER_ONLY, Change, NodeRecord, Proposal, signature
from agent.modes import ModeRules
from agent.playbook import Action, Playbook
from agent.snapshot import Snapshot, spent
from agent.spec import Spec
from agent.surrogate import SurrogateCache
from ucb.rewards import CONVERGED


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
        self.acquisition = Acquisition(spec, playbook, self.rules, self.rng)
        self.surrogates = SurrogateCache(spec.space, spec.n_slots, spec.exploration.seed)

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
            self.surrogates.get(snapshot.finished),
            self.ranker.open_tries(snapshot),
        )
        if context.surrogate is not None and not context.tries:
            proposal = self._acquire(snapshot, slot, self.parents(snapshot), context)
            if proposal is not None:
                return proposal
        parents = self.parent_candidates(snapshot)
        for fallback in (False, True):
            for parent in parents:
                proposal = self._mutate(snapshot, slot, parent, context, fallback)
                if proposal is not None:
                    return proposal
        return None

    def parent_candidates(self, snapshot: Snapshot) -> list[NodeRecord | None]:
        """Parents to try in order: a prefer-parent directive, then UCB order; root last (`parents`)."""
        eligible = {record.node_id: record for record in self.parents(snapshot)}
        preferred = [d.node for d in snapshot.directives if d.kind == "prefer-parent"]
        order = preferred + [node_id for node_id, _ in snapshot.ranking]
        ranked = {node_id: eligible[node_id] for node_id in order if node_id in eligible}
        return [*ranked.values(), None]

    def parents(self, snapshot: Snapshot) -> list[NodeRecord]:
        """The nodes that may be a parent, in log order.

        A node is a parent when it is a finished original with a reward, not under a
        ``freeze`` directive: a run the bands classify `failed` is one (UCB ranks it low);
        a crash, timeout or divergence is not.
        """
        frozen = {d.node for d in snapshot.directives if d.kind == "freeze"}
        seen: dict[int, bool] = {}
        found = []
        for record in snapshot.finished:
            if record.reward is None or record.replicate_of is not None:
                continue
            if frozen and _under_freeze(snapshot, record, frozen, seen):
                continue
            found.append(record)
        return found

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

    def _acquire(self, snapshot: Snapshot, slot: int, originals: list[NodeRecord], context: Context) -> Proposal | None:
        """The acquisition engine's proposal (agent/acquisition.py), or a rule's where one fires.

        A ``prefer-parent`` directive narrows the parents to the preferred ones. When a rule asks
        for a specific kind of change from the parent with the highest predicted reward (a
        generic rule, or a playbook row: seed 003's table), the rule decides, from that parent.
        """
        preferred = {d.node for d in snapshot.directives if d.kind == "prefer-parent"}
        if preferred & {p.node_id for p in originals}:
            originals = [p for p in originals if p.node_id in preferred]
        if not originals:
            return None
        surrogate = context.surrogate.with_pending(
            [(r.params, r.slot) for r in snapshot.records if not r.finished and r.params]
        )
        ranked = self.acquisition.parents(surrogate, originals, lambda: self._places(snapshot))
        if not ranked:
            return None  # no parent the surrogate can predict: the rules decide
        if self.modes.decide(snapshot, ranked[0]) is not self.playbook.default:
            return self._mutate(snapshot, slot, ranked[0], context, fallback=False)
        return self.acquisition.propose(snapshot, slot, ranked, surrogate, self.at_block_boundary(snapshot))

    def _places(self, snapshot: Snapshot) -> dict[int, int]:
        """Each parent's place in `parent_candidates` (a prefer-parent first, then UCB order)."""
        return {parent.node_id: place for place, parent in enumerate(self.parent_candidates(snapshot)) if parent}

    def _baseline(self, snapshot: Snapshot, slot: int, taken: set) -> Proposal | None:
        params, seed = self.rules.enforce(self.spec.base_params(), snapshot.directives), self.spec.base_seed()
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
        """A seed replicate of the leader, on the leader's own slot, while it has fewer than wanted and is
        `worth_confirming`."""
        wanted = snapshot.tree.replicates_wanted
        leader = snapshot.get(snapshot.leader.id) if snapshot.leader is not None else None
        if not wanted or leader is None or leader.slot != slot or not worth_confirming(leader, snapshot):
            return None
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
        raw = raw_of(self.spec, parent)
        base = self.rules.enforce(raw, snapshot.directives)
        seed = parent.seed if parent else self.spec.base_seed()
        parent_id = parent.node_id if parent else None
        scored = []
        for candidate in self.ranker.candidates(raw, base, slot, action, boundary, context):
            params = {**base, candidate.parameter.key: candidate.value}
            change = Change(candidate.parameter.key, candidate.old, candidate.value)
            if is_new(self.spec, self.rules, snapshot, slot, parent, params, (change,)):
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


def worth_confirming(leader: NodeRecord, snapshot: Snapshot) -> bool:
    """A converged leader always; one in another band (partial) once at most one launch per slot is left in
    the budget (runs finished and in flight count: the campaign ends on it); a failed one never."""
    if leader.failed:
        return False
    last_round = snapshot.spec.exploration.budget - spent(snapshot) <= snapshot.spec.n_slots
    return leader.status == CONVERGED or last_round

"""One reading of an exploration, shared by everything that decides or reports.

A `Snapshot` is built once per pass (agent/reader.py `FolderReader.snapshot`) from the
log's entries, the nodes in flight (launched jobs not yet written, pending proposals)
and the person's directives. It holds the tree (ucb/tree.py, in-flight nodes as virtual
visits), one `NodeRecord` per node, the pooled rewards, the PUCT ranking and the one
`best` node (`Tree.best`: the definition every command uses). The policy, the memory
writer, the entry writer, `ucbx status` and the live view read the same snapshot.

Within a pass it is updated, not rebuilt: `add_entry` after an entry is written,
`add_in_flight` after a proposal. Derived values are computed on first use and
forgotten at each update. The next pass's snapshot is this one `grown` with the
entries appended since; its tree then holds the log reader's Entry objects, so a
long-running daemon keeps one Entry per log entry (not also the one it wrote).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from agent.evidence import Ledger
from agent.history import Change, NodeRecord, record_from_entry, signature
from agent.spec import Spec
from memory.directives import Directive
from memory.notebook import Entry
from ucb.scores import NodeScore, puct
from ucb.tree import Node, Tree, score_entry

IN_FLIGHT_DERIVED = ("by_id", "in_flight_changes", "scores", "ranking")  # what a new in-flight node changes
DERIVED = (
    "finished",
    "by_id",
    "children",
    "in_flight_changes",
    "pooled",
    "scores",
    "ranking",
    "mutations",
    "best",
    "leader",
)


def replicates_wanted(spec: Spec) -> int:
    """Seed replicates a node needs before it is best (none when the trainer takes no seed)."""
    return spec.exploration.replicates if spec.trainer.seed_key else 0


def frozen_nodes(directives: list[Directive]) -> list[int]:
    return [d.node for d in directives if d.kind == "freeze"]


@dataclass
class Snapshot:
    """The exploration as one pass sees it."""

    spec: Spec
    entries: list[Entry]
    records: list[NodeRecord]  # one per entry (log order), then one per node in flight
    tree: Tree
    directives: list[Directive] = field(default_factory=list)
    reward_metric: str | None = None  # score this raw metric instead of the spec's objective (tests)
    entries_written: int = -1  # the log's entries (-1: len(entries))
    taken: Counter = None  # signatures of every run done or in flight (kept up to date; None: count them)

    def __post_init__(self) -> None:
        if self.entries_written < 0:
            self.entries_written = len(self.entries)
        if self.taken is None:
            self.taken = Counter()
            for record in self.records:
                self._take(record, 1)

    def _take(self, record: NodeRecord, count: int) -> None:
        """Count ``record``'s run as done or in flight (``count`` 1), or no longer (-1)."""
        if not 0 <= record.slot < self.spec.n_slots:
            return
        key = signature(self.spec.slots.values[record.slot], record.params, record.seed)
        self.taken[key] += count
        if self.taken[key] <= 0:
            del self.taken[key]

    @classmethod
    def build(
        cls,
        spec: Spec,
        entries: list[Entry],
        in_flight: list[NodeRecord] = (),
        directives: list[Directive] = (),
        records: list[NodeRecord] | None = None,
        reward_metric: str | None = None,
    ) -> Snapshot:
        """The snapshot of ``entries`` (their ``records``, when the caller kept them) and ``in_flight``."""
        objective = None if reward_metric else spec.objective
        if records is None:
            records = [_record(spec, entry, objective, reward_metric) for entry in entries]
        tree = Tree.from_entries(
            entries,
            objective,
            reward_metric,
            in_flight=[(r.node_id, r.parent) for r in in_flight],
            replicates_wanted=replicates_wanted(spec),
        )
        return cls(spec, list(entries), list(records) + list(in_flight), tree, list(directives), reward_metric)

    def grown(self, entries: list[Entry], in_flight: list[NodeRecord], directives: list[Directive]) -> Snapshot:
        """The next pass's snapshot: this one's tree and records with the entries appended since.

        ``entries`` must start with this snapshot's entries (the log only grew). This
        snapshot is used up: its tree becomes the new one's.
        """
        objective = None if self.reward_metric else self.spec.objective
        tree = self.tree
        written = len(self.entries)
        if not self._adopt(entries):
            return Snapshot.build(self.spec, entries, in_flight, directives, reward_metric=self.reward_metric)
        for record in self.records[written:]:
            tree.remove_in_flight(record.node_id)
            self._take(record, -1)
        records = self.records[:written]
        for entry in entries[written:]:
            record = _record(self.spec, entry, objective, self.reward_metric)
            records.append(record)
            self._take(record, 1)
            if not tree.add(entry, objective, self.reward_metric):
                return Snapshot.build(self.spec, entries, in_flight, directives, reward_metric=self.reward_metric)
        for record in in_flight:
            tree.add_in_flight(record.node_id, record.parent)
            self._take(record, 1)
        records += list(in_flight)
        return Snapshot(self.spec, list(entries), records, tree, list(directives), self.reward_metric, taken=self.taken)

    def _adopt(self, entries: list[Entry]) -> bool:
        """The tree holds the log reader's Entry objects (``entries``) for this snapshot's entries from now on.

        One Entry per log entry is alive: the reader's. The entries that differ are the last
        few: the ones `add_entry` took from the entry writer (what it built, not the parse of
        what it wrote) and the one the reader had parsed as the log's unfinished end (parsed
        again since). Each takes its place in the tree (the node's entry or one of its
        replicates); its reward stays as scored. False when one is not where the tree holds
        it (a node id given twice): the tree is built anew.
        """
        index = len(self.entries) - 1
        while index >= 0 and self.entries[index] is not entries[index]:
            if not self.tree.replace_entry(self.entries[index], entries[index]):
                return False
            index -= 1
        return True

    # ------------------------------------------------------------ updates within a pass

    def add_entry(self, entry: Entry) -> NodeRecord:
        """The entry just written: its node is finished now (no longer in flight)."""
        objective = None if self.reward_metric else self.spec.objective
        record = _record(self.spec, entry, objective, self.reward_metric)
        written = len(self.entries)
        self.entries.append(entry)
        self.entries_written += 1
        for flying in self.records[written:]:
            if flying.node_id == entry.node_id:
                self._take(flying, -1)
        self._take(record, 1)
        in_flight = [r for r in self.records[written:] if r.node_id != entry.node_id]
        self.records = self.records[:written] + [record] + in_flight
        if not self.tree.add(entry, objective, self.reward_metric):
            self.tree = Tree.from_entries(
                self.entries,
                objective,
                self.reward_metric,
                in_flight=[(r.node_id, r.parent) for r in in_flight],
                replicates_wanted=self.tree.replicates_wanted,
            )
        self._forget()
        return record

    def add_in_flight(self, record: NodeRecord) -> None:
        """A proposal made this pass: a virtual visit, and a config no other slot may take."""
        self.records.append(record)
        self._take(record, 1)
        self.tree.add_in_flight(record.node_id, record.parent)
        self._forget(IN_FLIGHT_DERIVED)

    def _forget(self, names: tuple[str, ...] = DERIVED) -> None:
        for name in names:
            self.__dict__.pop(name, None)

    # ------------------------------------------------------------ what consumers read

    @cached_property
    def best(self) -> Node | None:
        """The best node (`Tree.best`): reported only once it has its replicates."""
        return self.tree.best

    @cached_property
    def leader(self) -> Node | None:
        """The node that becomes best once its replicates confirm it (the one to replicate)."""
        return self.tree.leader

    def replicates_of(self, node_id: int) -> int:
        """Replicates of ``node_id`` finished or in flight."""
        return sum(1 for r in self.records if r.replicate_of == node_id)

    @cached_property
    def scores(self) -> list[NodeScore]:
        """PUCT scores, highest first; nodes under a `freeze` directive marked frozen."""
        return puct(self.tree, self.spec.exploration.ucb_c, frozen=frozen_nodes(self.directives))

    @cached_property
    def ranking(self) -> list[tuple[int, float]]:
        """(node id, UCB), highest first."""
        return [(score.node_id, score.ucb) for score in self.scores]

    @cached_property
    def pooled(self) -> dict[int, float | None]:
        """Replicate-pooled reward of each finished node."""
        return {node_id: node.mean for node_id, node in self.tree.nodes.items() if not node.in_flight}

    @cached_property
    def finished(self) -> list[NodeRecord]:
        return self.records[: len(self.entries)]

    @cached_property
    def by_id(self) -> dict[int, NodeRecord]:
        return {r.node_id: r for r in self.records}

    @cached_property
    def children(self) -> dict[int | None, list[NodeRecord]]:
        """Finished originals (not replicates) by parent id, in log order."""
        found: dict[int | None, list[NodeRecord]] = defaultdict(list)
        for record in self.finished:
            if record.replicate_of is None:
                found[record.parent].append(record)
        return found

    @cached_property
    def in_flight_changes(self) -> set[tuple[int | None, Change]]:
        """(parent id, change) of every mutation in flight."""
        return {(r.parent, r.change) for r in self.records if not r.finished and r.change is not None}

    @cached_property
    def ledger(self) -> Ledger:
        """The evidence of every single-change mutation (agent/evidence.py)."""
        return Ledger(self.finished, self.pooled)

    @cached_property
    def mutations(self) -> dict[int, str]:
        """Each node's Mutation line."""
        return {entry.node_id: entry.mutation for entry in self.entries}

    def get(self, node_id: int | None) -> NodeRecord | None:
        return self.by_id.get(node_id)


def spent(snapshot: Snapshot) -> int:
    """What the budget has paid for: the log's entries and the jobs in flight."""
    in_flight = len(snapshot.records) - len(snapshot.entries)
    return snapshot.entries_written + in_flight


def _record(spec: Spec, entry: Entry, objective, metric: str | None) -> NodeRecord:
    return record_from_entry(entry, spec.space, score_entry(entry, objective, metric)[0])

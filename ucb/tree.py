"""The mutation tree: one node per experiment, built from the log's entries.

Owns `Node` and `Tree` (the whole search tree as one record, with a few queries).
- The ``Node:`` line is the truth: a node's parent is its entry's ``parent``
  (None = a child of the root).
- A replicate entry (mode ``replicate``, parent P) is a seed replicate of node P: its
  reward is pooled into P (mean, spread), it is one more visit of P, and it is never a
  node of its own.
- A failed run (a ``Failure:`` line, a nan or missing primary metric) is a visit with a
  failure mark and ``reward`` None: never a score of 0.0 that looks real.
- In-flight jobs (launched, no result yet) are virtual nodes: they count as visits of
  their ancestors, so parallel slots do not all branch from one parent.
Unknown parents and parent cycles (hand-edited logs) are reported in ``problems`` and
the node hangs from the root instead. Building and visit counts are linear in the
number of entries.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from memory.errors import Problem
from memory.notebook import Entry
from ucb.rewards import FAILED, Objective


@dataclass
class Node:
    """One experiment, with the rewards pooled from its seed replicates."""

    id: int
    parent: int | None
    entry: Entry | None  # None for an in-flight node
    reward: float | None = None  # this run's reward; None = failure (or in flight)
    failure: str = ""  # "diverged: nan in loss", "nan: avg_slope_ratio", ...
    classification: str = ""
    guard_failed: str = ""
    rewards: list[float] = field(default_factory=list)  # own + replicates, failures left out
    replicates: list[Entry] = field(default_factory=list)
    in_flight: bool = False

    @property
    def mean(self) -> float | None:
        """Pooled reward (None when every evaluation failed or the node is in flight)."""
        if len(self.rewards) == 1:  # most nodes: read for every node in every pass, so no sum
            return self.rewards[0]
        return math.fsum(self.rewards) / len(self.rewards) if self.rewards else None

    @property
    def spread(self) -> float:
        """Sample standard deviation of the pooled rewards (0.0 for fewer than two)."""
        count = len(self.rewards)
        if count < 2:
            return 0.0
        mean = math.fsum(self.rewards) / count
        return math.sqrt(math.fsum((reward - mean) ** 2 for reward in self.rewards) / (count - 1))

    @property
    def n_replicates(self) -> int:
        return len(self.replicates)

    @property
    def evaluations(self) -> int:
        """Visits this node adds by itself: its run, plus one per replicate."""
        return 1 + len(self.replicates)

    @property
    def is_failure(self) -> bool:
        """Finished with no reward in any evaluation (crash, timeout, nan: a ``Failure:`` line); a run the
        bands class ``failed`` but that has a reward is not one."""
        return not self.in_flight and self.mean is None


def score_entry(entry: Entry, objective: Objective | None, metric: str | None) -> tuple[float | None, str, str, str]:
    """(reward, failure, classification, guard_failed) of one finished entry.

    With an objective the reward is the objective's; without, the raw ``metric`` value,
    where nan, inf or a missing value is a failure.
    """
    if entry.failure:
        return None, entry.failure, FAILED, ""
    if objective is not None:
        score = objective.score(entry.metrics)
        return score.reward, score.failure, score.classification, score.guard_failed
    if metric is None:
        raise ValueError("score_entry needs an objective or a metric name")
    value = entry.metrics.get(metric)
    if value is None:
        return None, f"missing: {metric}", entry.status, ""
    if not math.isfinite(value):
        return None, f"{value}: {metric}", entry.status, ""
    return value, "", entry.status, ""


def scored_node(entry: Entry, parent: int | None, objective: Objective | None, metric: str | None) -> Node:
    """The finished node of ``entry`` under ``parent``, its own reward scored (`score_entry`)."""
    reward, failure, classification, guard = score_entry(entry, objective, metric)
    rewards = [] if reward is None else [reward]
    return Node(entry.node_id, parent, entry, reward, failure, classification, guard, rewards=rewards)


@dataclass
class Tree:
    """All nodes by id (in log order), their children, and the problems met building them."""

    nodes: dict[int, Node] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    replicates_wanted: int = 0  # seed replicates a node needs before it can be `best`
    _replicate_of: dict[int, int] = field(default_factory=dict, repr=False)  # replicate id -> node id
    _orphan_targets: set[int] = field(default_factory=set, repr=False)  # nodes replicated before they were logged
    _children: dict[int | None, list[int]] = field(default_factory=dict, repr=False)
    _order: list[int] = field(default_factory=list, repr=False)  # parents before children

    # ------------------------------------------------------------ building

    @classmethod
    def from_entries(
        cls,
        entries: list[Entry],
        objective: Objective | None = None,
        metric: str | None = None,
        in_flight: list[tuple[int, int | None]] = (),
        replicates_wanted: int = 0,
    ) -> Tree:
        """The tree of ``entries`` plus the in-flight ``(node_id, parent)`` pairs.

        Rewards come from ``objective`` when given, else from the raw ``metric`` value.
        A node id given twice keeps its last entry (reported). ``replicates_wanted``: the
        seed replicates a node needs before it is `best` (the spec's
        ``exploration.replicates`` when the trainer has a seed key, else 0).
        """
        tree = cls(replicates_wanted=replicates_wanted)
        replicate_of = tree._replicate_of
        for entry in entries:
            if entry.is_replicate:
                continue
            if entry.node_id in tree.nodes:
                tree.report(entry, f"node {entry.node_id} defined again; keeping this entry")
            tree.nodes[entry.node_id] = scored_node(entry, entry.parent, objective, metric)
        for entry in entries:
            if entry.is_replicate:
                tree._add_replicate(entry, objective, metric, replicate_of)
        for node_id, parent in in_flight:
            if node_id not in tree.nodes and node_id not in replicate_of:
                tree.nodes[node_id] = Node(node_id, parent, None, in_flight=True)
        for node in tree.nodes.values():
            node.parent = replicate_of.get(node.parent, node.parent)
        tree._link()
        return tree

    def report(self, entry: Entry | None, message: str) -> None:
        line = entry.line if entry else 0
        self.problems.append(Problem(line, message))

    def _add_replicate(
        self, entry: Entry, objective: Objective | None, metric: str | None, replicate_of: dict[int, int]
    ) -> None:
        target = replicate_of.get(entry.parent, entry.parent)
        node = self.nodes.get(target) if target is not None else None
        if node is None:
            self.report(
                entry,
                f"node {entry.node_id} replicates node {entry.parent}, which is not in the "
                "log; counted as a node of its own",
            )
            if entry.parent is not None:
                self._orphan_targets.add(entry.parent)
            self.nodes[entry.node_id] = scored_node(entry, entry.parent, objective, metric)
            return
        replicate_of[entry.node_id] = target
        reward = score_entry(entry, objective, metric)[0]
        node.replicates.append(entry)
        if reward is not None:
            node.rewards.append(reward)

    def _link(self) -> None:
        """Children lists and a parents-first order; unknown parents and cycles hang from the root."""
        for node in self.nodes.values():
            if node.parent is not None and node.parent not in self.nodes:
                self.report(
                    node.entry,
                    f"node {node.id}: parent {node.parent} is not in the tree; treated as a child of the root",
                )
                node.parent = None
        self._children = {None: []}
        for node in self.nodes.values():
            self._children.setdefault(node.id, [])
            self._children.setdefault(node.parent, []).append(node.id)
        self._order = self._walk(self._children[None])
        if len(self._order) < len(self.nodes):
            self._break_cycles()

    def _walk(self, starts: list[int]) -> list[int]:
        order, queue = [], deque(starts)
        while queue:
            node_id = queue.popleft()
            order.append(node_id)
            queue.extend(self._children[node_id])
        return order

    def _break_cycles(self) -> None:
        reached = set(self._order)
        for node in self.nodes.values():
            if node.id in reached:
                continue
            self.report(
                node.entry, f"node {node.id}: its parent chain loops back to itself; treated as a child of the root"
            )
            self._children[node.parent].remove(node.id)
            node.parent = None
            self._children[None].append(node.id)
            added = self._walk([node.id])
            self._order.extend(added)
            reached.update(added)

    # ------------------------------------------------------------ queries

    @property
    def roots(self) -> list[int]:
        """Nodes branching from the root (parent None), in log order."""
        return list(self._children.get(None, []))

    def children(self, node_id: int) -> list[int]:
        return list(self._children.get(node_id, []))

    def descendants(self, node_id: int) -> list[int]:
        """Every node below ``node_id``, breadth first."""
        return self._walk(self._children.get(node_id, []))

    def ancestors(self, node_id: int) -> list[int]:
        """The parent, its parent, ... up to a root node."""
        chain, parent = [], self.nodes[node_id].parent
        while parent is not None:
            chain.append(parent)
            parent = self.nodes[parent].parent
        return chain

    def subtrees(self, node_ids: set[int] | list[int]) -> set[int]:
        """The given nodes and all their descendants (unknown ids are ignored)."""
        present = [node_id for node_id in node_ids if node_id in self.nodes]
        return set(present) | set(self._walk([child for node_id in present for child in self._children[node_id]]))

    @property
    def leader(self) -> Node | None:
        """The node that would be best if its replicates confirm it (see `best`)."""
        return max(self._scored(), key=_best_order, default=None)

    @property
    def best(self) -> Node | None:
        """The best node: the one definition every command and the agent use.

        Any node with a pooled reward can be best (a crash, timeout or divergence has
        none); a node the objective's bands class ``converged`` or ``partial`` always
        ranks above one they class ``failed``; among those, the highest pooled mean
        reward wins (the earlier node on ties). A node is best only once it has its
        ``replicates_wanted`` seed replicates; until then it is only the `leader`.
        """
        confirmed = (node for node in self._scored() if node.n_replicates >= self.replicates_wanted)
        return max(confirmed, key=_best_order, default=None)

    def _scored(self):
        return (node for node in self.nodes.values() if not node.in_flight and node.mean is not None)

    # ------------------------------------------------------------ growing

    def add(self, entry: Entry, objective: Objective | None = None, metric: str | None = None) -> bool:
        """One entry appended to the log, as `from_entries` with it would give.

        Returns False, changing nothing, when the entry needs the whole tree rebuilt (a node
        id seen before, a parent not in the tree): the caller then calls `from_entries`.
        An in-flight node of the same id becomes the finished node or replicate.
        """
        if entry.is_replicate:
            return self._add_replicate_entry(entry, objective, metric)
        known = self.nodes.get(entry.node_id)
        parent = self._replicate_of.get(entry.parent, entry.parent)
        if (known is not None and not known.in_flight) or entry.node_id in self._replicate_of:
            return False
        if entry.node_id in self._orphan_targets:  # a replicate logged before it: a rebuild pools it
            return False
        if parent is not None and (parent not in self.nodes or self.nodes[parent].in_flight):
            return False
        node = scored_node(entry, parent, objective, metric)
        if known is not None:
            self._unlink(known)
        self.nodes[node.id] = node
        self._children.setdefault(node.id, [])
        self._children[parent].append(node.id)
        self._order.append(node.id)
        return True

    def replace_entry(self, held: Entry, parsed: Entry) -> bool:
        """``parsed`` in place of ``held`` (the same log entry read again), as a node's entry or one
        of its replicates; rewards stay as scored. False when the tree does not hold ``held``."""
        if (held.node_id, held.parent, held.is_replicate) != (parsed.node_id, parsed.parent, parsed.is_replicate):
            return False
        node = self.nodes.get(held.node_id)
        if node is not None and node.entry is held:
            node.entry = parsed
            return True
        target = self.nodes.get(self._replicate_of.get(held.parent, held.parent))
        replicates = target.replicates if target is not None else []
        for index, replicate in enumerate(replicates):
            if replicate is held:
                replicates[index] = parsed
                return True
        return False

    def _add_replicate_entry(self, entry: Entry, objective: Objective | None, metric: str | None) -> bool:
        target = self._replicate_of.get(entry.parent, entry.parent)
        node = self.nodes.get(target) if target is not None else None
        known = self.nodes.get(entry.node_id)
        if node is None or node.in_flight or entry.node_id in self._replicate_of:
            return False
        if known is not None and not known.in_flight:
            return False
        if known is not None:
            self._unlink(known)
            del self.nodes[known.id]
        self._replicate_of[entry.node_id] = target
        reward = score_entry(entry, objective, metric)[0]
        node.replicates.append(entry)
        if reward is not None:
            node.rewards.append(reward)
        return True

    def add_in_flight(self, node_id: int, parent: int | None) -> None:
        """A node launched or proposed, not finished: a virtual visit of its ancestors."""
        if node_id in self.nodes or node_id in self._replicate_of:
            return
        parent = self._replicate_of.get(parent, parent)
        if parent is not None and parent not in self.nodes:
            self.problems.append(
                Problem(0, f"node {node_id}: parent {parent} is not in the tree; treated as a child of the root")
            )
            parent = None
        self.nodes[node_id] = Node(node_id, parent, None, in_flight=True)
        self._children.setdefault(node_id, [])
        self._children[parent].append(node_id)
        self._order.append(node_id)

    def remove_in_flight(self, node_id: int) -> None:
        """Forget a virtual node (its job was dropped, or a new pass reads the jobs again)."""
        node = self.nodes.get(node_id)
        if node is not None and node.in_flight:
            self._unlink(node)
            del self.nodes[node_id]

    def _unlink(self, node: Node) -> None:
        """Take a childless in-flight node out of the links (it is about to be replaced)."""
        self._children[node.parent].remove(node.id)
        self._order.remove(node.id)

    def visits(self, members: set[int] | None = None) -> dict[int, int]:
        """V(u) = visits in u's subtree: each node's run, its replicates, in-flight nodes.

        With ``members`` only those nodes count and only they are returned (a block).
        """
        counted = {
            node_id: self.nodes[node_id].evaluations if members is None or node_id in members else 0
            for node_id in self._order
        }
        for node_id in reversed(self._order):
            parent = self.nodes[node_id].parent
            if parent is not None:
                counted[parent] += counted[node_id]
        return counted if members is None else {node_id: counted[node_id] for node_id in counted if node_id in members}


def _best_order(node: Node) -> tuple:
    """How `Tree.best` ranks nodes: a band class other than failed first, then the pooled mean."""
    return (node.classification != FAILED, node.mean, -node.id)

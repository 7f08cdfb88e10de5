"""What a large tree shows: the nodes kept, long chains collapsed, the rest summarised.

Owns the selection shared by the tree figure (ucb/plot.py) and ``ucbx tree``
(agent/review/tree_view.py): ``outline(tree, top=K, budget=B, depth=D, c=C) -> Outline``.
- Always kept: the best node and the ``top`` nodes with the highest PUCT score that have
  a reward (the UCB frontier), with every ancestor (their lineages).
- When the whole tree fits in ``budget`` lines (collapsing chains if need be) it is all
  kept; otherwise, while the outline stays within ``budget`` lines, in-flight nodes and
  then the best-rewarded other nodes are added with their lineages (the fill stops at the
  first that does not fit). ``budget=0`` keeps the required nodes only; ``budget=None``
  keeps every node and collapses nothing.
- ``depth``: nodes more than ``depth`` mutations below the root are left out, kept or not.
- When the kept nodes do not fit in ``budget`` lines as they are, runs of kept nodes that
  each have exactly one kept child and are neither the best nor on the frontier are
  collapsed into the edge above the run's last child (`Chain`: its nodes, the changes
  along them, what branches off it): runs of ``CHAIN_LENGTHS[0]`` nodes or more first,
  then shorter ones, down to ``MIN_CHAIN``; a tree that fits is drawn node by node.
- The children left out below a kept node are one `Hidden` line under it (nodes,
  subtrees, best pooled reward, failed and running counts); those below a chain are in
  the chain's text; left-out top-level nodes are a `Hidden` line at the end.
Rows come parents first, children in log order, a node's Hidden line after its children.
A line is a row, plus one per collapsed chain (drawn above its child). Building is
linear in the number of nodes; the fill rebuilds once per added lineage.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from memory.notebook import Mutation, parse_mutation
from ucb.scores import DEFAULT_C, puct
from ucb.tree import Tree

MIN_CHAIN = 3  # nodes in a run before it is collapsed into one edge
CHAIN_LENGTHS = (12, 6, MIN_CHAIN)  # runs at least this long are collapsed, longest first, until the tree fits
MAX_CHANGE_PARTS = 3  # parameters named in a chain's text, then "+N more"
RATIO_TOLERANCE = 0.02  # steps whose new/old ratios agree this closely read "x1.5 eight times"
TIMES = ("no times", "once", "twice", "three times", "four times", "five times", "six times", "seven times")
TIMES += ("eight times", "nine times", "ten times", "eleven times", "twelve times")


def failure_text(text: str) -> str:
    """A failure said once: ``diverged: diverged: 1`` (kind + a reason that repeats it) -> ``diverged: 1``."""
    kind, separator, reason = text.partition(": ")
    return reason if separator and reason.startswith(f"{kind}:") else text


@dataclass(frozen=True)
class Hidden:
    """Nodes left out below one place of the outline."""

    nodes: int
    subtrees: int
    best: float | None
    best_id: int | None
    failed: int
    running: int

    def text(self) -> str:
        """``+37 nodes in 5 subtrees: best 0.812 (node 311), 4 failed, 1 running``."""
        what = f"+{self.nodes} node{'s' * (self.nodes != 1)}"
        if self.subtrees > 1:
            what += f" in {self.subtrees} subtrees"
        parts = [f"best {self.best:.3f} (node {self.best_id})"] if self.best is not None else []
        parts += [f"{self.failed} failed"] if self.failed else []
        parts += [f"{self.running} running"] if self.running else []
        return what + (": " + ", ".join(parts) if parts else "")


@dataclass(frozen=True)
class Chain:
    """Kept nodes collapsed into the edge above a row: each had one child on the way down."""

    node_ids: tuple[int, ...]
    hidden: Hidden | None  # left-out subtrees branching off the chain

    def text(self, tree: Tree) -> str:
        """``8 steps: lr_node_homeo x1.5 eight times: 3e-5 -> 5e-4; +12 nodes branch off: ...``."""
        steps = [tree.nodes[node_id].entry for node_id in self.node_ids]
        text = f"{len(steps)} steps: {describe_changes(entry.mutation for entry in steps if entry is not None)}"
        return text + (f"; branching off: {self.hidden.text()}" if self.hidden else "")


@dataclass(frozen=True)
class Row:
    """One node of the outline, or (``node_id`` None) the Hidden line of the row ``parent``."""

    depth: int  # drawn depth: 0 for top-level rows
    node_id: int | None = None
    parent: int | None = None  # index of the parent row; None at the top
    chain: Chain | None = None  # collapsed nodes on the edge above this row
    hidden: Hidden | None = None  # for a Hidden line


@dataclass
class Outline:
    """The rows to draw, and what marks them."""

    rows: list[Row]
    best_id: int | None
    lineage: set[int]  # the best node and its ancestors
    frontier: dict[int, int]  # node id -> rank by UCB (1 = highest)
    total: int  # nodes in the tree, in-flight ones included

    @property
    def lines(self) -> int:
        return line_count(self.rows)

    @property
    def shown(self) -> int:
        return sum(1 for row in self.rows if row.node_id is not None)

    @property
    def collapsed(self) -> int:
        return sum(len(row.chain.node_ids) for row in self.rows if row.chain)

    def summary(self) -> str:
        """``showing 58 of 5000 nodes (312 in collapsed chains, 4630 summarised)``."""
        left_out = self.total - self.shown - self.collapsed
        return (
            f"showing {self.shown} of {self.total} nodes ({self.collapsed} in collapsed chains, {left_out} summarised)"
        )


def line_count(rows: list[Row]) -> int:
    """Rows plus one line per collapsed chain."""
    return len(rows) + sum(1 for row in rows if row.chain)


# ---------------------------------------------------------------- chain text


def describe_changes(mutations: Iterable[str]) -> str:
    """The changes along a chain, per parameter: ``lr x1.5 eight times: 3e-5 -> 5e-4; 2 other changes``."""
    by_param: dict[str, list[Mutation]] = {}
    others = 0
    for text in mutations:
        mutation = parse_mutation(text)
        if mutation is None:
            others += 1
        else:
            by_param.setdefault(mutation.param, []).append(mutation)
    parts = [_param_changes(param, steps) for param, steps in by_param.items()]
    if len(parts) > MAX_CHANGE_PARTS:
        parts = parts[:MAX_CHANGE_PARTS] + [f"+{len(parts) - MAX_CHANGE_PARTS} more parameters"]
    if others:
        parts.append(f"{others} other change{'s' * (others != 1)}")
    return "; ".join(parts)


def _times(count: int) -> str:
    return TIMES[count] if count < len(TIMES) else f"{count} times"


def _param_changes(param: str, steps: list[Mutation]) -> str:
    first, last = steps[0].old, steps[-1].new
    if len(steps) == 1:
        return f"{param}: {first} → {last}"
    ratio = _common_ratio(steps)
    factor = f" ×{ratio:.3g}" if ratio is not None else " changed"
    return f"{param}{factor} {_times(len(steps))}: {first} → {last}"


def _common_ratio(steps: list[Mutation]) -> float | None:
    """new/old when every step multiplied the value by the same factor, else None."""
    ratios = []
    for step in steps:
        try:
            old, new = float(step.old), float(step.new)
        except ValueError:
            return None
        if old == 0 or not math.isfinite(new / old):
            return None
        ratios.append(new / old)
    first = ratios[0]
    return first if all(abs(ratio - first) <= RATIO_TOLERANCE * abs(first) for ratio in ratios) else None


# ---------------------------------------------------------------- selection


@dataclass
class _Facts:
    """Per-node facts computed once: depth and the aggregate of each subtree."""

    depth: dict[int, int]
    stats: dict[int, Hidden]  # the node's whole subtree, as if left out


def _facts(tree: Tree) -> _Facts:
    depth, order = {}, []
    queue = [(node_id, 0) for node_id in tree.roots]
    while queue:
        node_id, level = queue.pop()
        depth[node_id] = level
        order.append(node_id)
        queue.extend((child, level + 1) for child in tree.children(node_id))
    stats = {}
    for node_id in reversed(order):
        node = tree.nodes[node_id]
        best_id = node.id if node.mean is not None else None
        own = Hidden(1, 1, node.mean, best_id, int(node.is_failure), int(node.in_flight))
        stats[node_id] = _merge([own, *(stats[child] for child in tree.children(node_id))], subtrees=1)
    return _Facts(depth, stats)


def _merge(parts: list[Hidden], subtrees: int | None = None) -> Hidden:
    """One Hidden for several left-out subtrees (best: the first highest)."""
    scored = [part for part in parts if part.best is not None]
    top = max(scored, key=lambda part: part.best, default=None)
    return Hidden(
        sum(part.nodes for part in parts),
        sum(part.subtrees for part in parts) if subtrees is None else subtrees,
        top.best if top else None,
        top.best_id if top else None,
        sum(part.failed for part in parts),
        sum(part.running for part in parts),
    )


def _with_lineage(tree: Tree, node_ids: Iterable[int], kept: set[int]) -> set[int]:
    """The nodes and their ancestors, walking up only until a node already in ``kept``."""
    added = set()
    for node_id in node_ids:
        while node_id is not None and node_id not in kept and node_id not in added:
            added.add(node_id)
            node_id = tree.nodes[node_id].parent
    return added


def _frontier(tree: Tree, top: int, c: float) -> dict[int, int]:
    """node id -> rank of the ``top`` highest PUCT scores among nodes with a reward."""
    scores = [score for score in puct(tree, c) if score.reward is not None]
    return {score.node_id: rank for rank, score in enumerate(scores[:top], start=1)}


def outline(
    tree: Tree, top: int = 5, budget: int | None = None, depth: int | None = None, c: float = DEFAULT_C
) -> Outline:
    """The rows of ``tree`` to draw (see the module docstring); ``budget`` None keeps every node."""
    facts = _facts(tree)
    allowed = {node_id for node_id, level in facts.depth.items() if depth is None or level <= depth}
    best = tree.best
    frontier = _frontier(tree, top, c)
    marked = ({best.id} if best else set()) | set(frontier)
    lineage = _with_lineage(tree, [best.id], set()) if best else set()
    if budget is None:
        rows = _rows(tree, facts, allowed, marked, None)
    else:
        rows = _whole(tree, facts, allowed, marked, budget)
    if rows is None:
        kept = _with_lineage(tree, marked, set()) & allowed
        kept = _fill(tree, facts, kept, allowed, marked, budget) if budget > 0 else kept
        rows = _rows(tree, facts, kept, marked, MIN_CHAIN)
    return Outline(rows, best.id if best else None, lineage, frontier, len(tree.nodes))


def _whole(tree: Tree, facts: _Facts, allowed: set[int], marked: set[int], budget: int) -> list[Row] | None:
    """Every allowed node within ``budget`` lines, collapsing as few chains as that takes; None if impossible."""
    for min_chain in (None, *CHAIN_LENGTHS):
        rows = _rows(tree, facts, allowed, marked, min_chain)
        if line_count(rows) <= budget:
            return rows
    return None


def _fill(tree: Tree, facts: _Facts, kept: set[int], allowed: set[int], marked: set[int], budget: int) -> set[int]:
    """Add running nodes, then the best-rewarded ones, each with its lineage, while the lines fit."""
    running = [node.id for node in tree.nodes.values() if node.in_flight]
    scored = sorted((node for node in tree.nodes.values() if node.mean is not None), key=lambda node: -node.mean)
    for node_id in running + [node.id for node in scored]:
        if node_id in kept or node_id not in allowed:
            continue
        trial = kept | _with_lineage(tree, [node_id], kept)
        if line_count(_rows(tree, facts, trial, marked, MIN_CHAIN)) > budget:
            break
        kept = trial
    return kept


def _rows(tree: Tree, facts: _Facts, kept: set[int], marked: set[int], min_chain: int | None) -> list[Row]:
    """The outline's rows for the ``kept`` nodes, parents first (an explicit stack: chains can be long);
    runs of at least ``min_chain`` collapsible nodes are collapsed (None: none)."""
    kept_children = {node_id: [c for c in tree.children(node_id) if c in kept] for node_id in kept}
    rows: list[Row] = []
    stack: list[tuple[str, int | None, int, int | None]] = [("hidden", None, 0, None)]
    stack += [("node", node_id, 0, None) for node_id in reversed(tree.roots) if node_id in kept]
    while stack:
        kind, node_id, level, parent_row = stack.pop()
        if kind == "hidden":
            hidden = _hidden_below(tree, facts, node_id, kept)
            if hidden is not None:
                rows.append(Row(level, parent=parent_row, hidden=hidden))
            continue
        chain, node_id = _chain_from(tree, facts, node_id, (kept_children, marked, kept), min_chain)
        rows.append(Row(level, node_id, parent_row, chain))
        here = len(rows) - 1
        stack.append(("hidden", node_id, level + 1, here))
        stack += [("node", child, level + 1, here) for child in reversed(kept_children[node_id])]
    return rows


def _collapsible(tree: Tree, node_id: int, kept_children: dict, marked: set[int], kept: set[int]) -> bool:
    parent = tree.nodes[node_id].parent
    return node_id not in marked and parent in kept and len(kept_children[node_id]) == 1


def _chain_from(
    tree: Tree, facts: _Facts, node_id: int, selection: tuple[dict, set[int], set[int]], min_chain: int | None
) -> tuple[Chain | None, int]:
    """(the chain collapsed above the row, the row's node): ``node_id`` itself when the run is short.

    ``selection``: the kept children of each kept node, the marked nodes, the kept nodes.
    """
    kept_children, marked, kept = selection
    if min_chain is None:
        return None, node_id
    run = []
    current = node_id
    while _collapsible(tree, current, kept_children, marked, kept):
        run.append(current)
        current = kept_children[current][0]
    if len(run) < min_chain:
        return None, node_id
    branching = [_hidden_below(tree, facts, member, kept) for member in run]
    found = [part for part in branching if part is not None]
    return Chain(tuple(run), _merge(found) if found else None), current


def _hidden_below(tree: Tree, facts: _Facts, node_id: int | None, kept: set[int]) -> Hidden | None:
    """The subtrees of ``node_id``'s children (the top level for None) that are not kept."""
    children = tree.roots if node_id is None else tree.children(node_id)
    left_out = [facts.stats[child] for child in children if child not in kept]
    return _merge(left_out) if left_out else None

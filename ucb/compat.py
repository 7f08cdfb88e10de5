"""The metabolismgraph compatibility rules: scores as that public implementation computes them.

Owns the differences from the native tree, applied to the entries before the tree is
built, so that `puct` and the scores file are shared:
- the ``Next: parent=P`` line of iteration N sets the parent of node N+1 (a Next line
  pointing at the node itself is ignored); entries without a Next line keep their
  ``Node:`` parent;
- with a block (``block_size`` and ``current_iteration``) only nodes whose id lies in
  the block count, and a parent outside the block becomes the root;
- a nan metric counts as 0.0, a missing ``test_pearson`` as 0.0; replicates are nodes
  of their own and ``Failure:`` lines are ignored; an entry without the metric is left
  out (reported).
Deliberate differences: negative values and values in scientific notation are read
as numbers (the public regular expression ``[\\d.]+`` drops or truncates them), and
the metric is read from the Metrics line only.
"""

from __future__ import annotations

import math
from dataclasses import replace

from memory.errors import Problem
from memory.notebook import Entry
from ucb.scores import NodeScore, block_range, format_scores, puct, scores_header
from ucb.tree import Tree

PEARSON = "test_pearson"


def _zero_nan(metrics: dict[str, float], names: tuple[str, ...]) -> dict[str, float]:
    cleaned = dict(metrics)
    for name in names:
        value = cleaned.get(name, 0.0)
        cleaned[name] = 0.0 if math.isnan(value) else value
    return cleaned


def compat_entries(
    entries: list[Entry], metric: str, current_iteration: int | None = None, block_size: int = 0
) -> tuple[list[Entry], list[Problem]]:
    """The entries rewritten by the compatibility rules, and the entries left out."""
    problems = [
        Problem(entry.line, f"Iter {entry.iteration}: no {metric}; left out of the scores")
        for entry in entries
        if metric not in entry.metrics
    ]
    next_parent = {entry.iteration: entry.next_parent for entry in entries if entry.has_next}
    rewritten = []
    for entry in entries:
        if metric not in entry.metrics:
            continue
        parent = entry.parent
        if entry.node_id - 1 in next_parent and next_parent[entry.node_id - 1] != entry.node_id:
            parent = next_parent[entry.node_id - 1]
        rewritten.append(
            replace(entry, parent=parent, mode="", failure="", metrics=_zero_nan(entry.metrics, (metric, PEARSON)))
        )
    if block_size > 0 and current_iteration is not None:
        _, first, last = block_range(current_iteration, block_size)
        rewritten = [entry for entry in rewritten if first <= entry.node_id <= last]
        inside = {entry.node_id for entry in rewritten}
        rewritten = [entry if entry.parent in inside else replace(entry, parent=None) for entry in rewritten]
    return rewritten, problems


def compat_scores(
    entries: list[Entry], metric: str, c: float, current_iteration: int | None = None, block_size: int = 0
) -> tuple[str, Tree, list[NodeScore], list[Problem]]:
    """The scores file text exactly as the public implementation writes it, with its tree and scores."""
    kept, problems = compat_entries(entries, metric, current_iteration, block_size)
    tree = Tree.from_entries(kept, metric=metric)
    scores = puct(tree, c)
    block = None
    if block_size > 0 and current_iteration is not None:
        block = block_range(current_iteration, block_size)
    header = scores_header(len(tree.nodes), c, block, block_word="Simulation block")
    text = format_scores(scores, tree, header, columns=(("R2", metric), ("Pearson", PEARSON)), show_reward=False)
    return text, tree, scores, problems + tree.problems

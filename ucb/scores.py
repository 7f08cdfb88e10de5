"""PUCT scores over the tree, and `<name>_ucb_scores.txt` in the public format.

Owns the score formula and the scores file:
``UCB(u) = mean_reward(u) + c * sqrt(N_total) / (1 + V(u))`` with ``V(u)`` the visits of
u's subtree (its run, its replicates, its descendants, in-flight ones included) and
``N_total`` the visits counted. A failed node scores its exploration term alone and
carries its failure mark; in-flight nodes are counted but never listed. With a block
(``block_members``) only the block's nodes are counted and listed; lineage is kept.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from memory.atomic import write_text_atomic
from memory.notebook import format_number
from ucb.tree import Tree

DEFAULT_C = 1.414


@dataclass(frozen=True)
class NodeScore:
    """One node's PUCT score, as listed in the scores file."""

    node_id: int
    parent: int | None
    ucb: float
    reward: float | None  # pooled mean; None = every evaluation failed
    spread: float
    n: int  # pooled rewards
    visits: int
    failure: str = ""
    frozen: bool = False  # inside a subtree frozen by a directive


def block_range(current_iteration: int, block_size: int) -> tuple[int, int, int]:
    """(block index from 0, first iteration, last iteration) of the block holding ``current_iteration``."""
    block = (current_iteration - 1) // block_size
    return block, block * block_size + 1, (block + 1) * block_size


def block_members(tree: Tree, current_iteration: int, block_size: int) -> set[int]:
    """Nodes whose entry's iteration lies in the current block, plus every in-flight node."""
    _, first, last = block_range(current_iteration, block_size)
    return {node.id for node in tree.nodes.values() if node.in_flight or first <= node.entry.iteration <= last}


def total_visits(tree: Tree, block_nodes: set[int] | None = None) -> int:
    """N_total: the visits counted (runs, replicates, in-flight nodes) in the block or the tree."""
    members = tree.nodes.keys() if block_nodes is None else block_nodes & tree.nodes.keys()
    return sum(tree.nodes[node_id].evaluations for node_id in members)


def puct(
    tree: Tree, c: float = DEFAULT_C, block_nodes: set[int] | None = None, frozen: set[int] | list[int] = ()
) -> list[NodeScore]:
    """Scores of the finished nodes (of the block, if given), highest UCB first.

    ``frozen``: node ids whose subtrees a directive froze; their scores are marked.
    Ties keep log order.
    """
    visits = tree.visits(block_nodes)
    n_total = total_visits(tree, block_nodes)
    frozen_ids = tree.subtrees(frozen) if frozen else set()
    scores = []
    for node in tree.nodes.values():
        if node.id not in visits or node.in_flight:
            continue
        exploration = c * math.sqrt(n_total) / (1 + visits[node.id])
        mean = node.mean
        scores.append(
            NodeScore(
                node.id,
                node.parent,
                (mean or 0.0) + exploration,
                mean,
                node.spread,
                len(node.rewards),
                visits[node.id],
                node.failure if mean is None else "",
                node.id in frozen_ids,
            )
        )
    scores.sort(key=lambda score: -score.ucb)
    return scores


def choose_parent(scores: list[NodeScore]) -> NodeScore | None:
    """The top non-frozen, non-failed node; a failed one only when nothing else is left."""
    open_scores = [score for score in scores if not score.frozen]
    return next((score for score in open_scores if score.reward is not None), open_scores[0] if open_scores else None)


def scores_header(n_total: int, c: float, block: tuple[int, int, int] | None = None, block_word: str = "block") -> str:
    """``=== UCB Scores (block B, iters a-b, N=n, c=c) ===`` or ``(N_total=n, c=c)`` without a block."""
    if block is None:
        return f"=== UCB Scores (N_total={n_total}, c={c}) ==="
    number, first, last = block
    return f"=== UCB Scores ({block_word} {number}, iters {first}-{last}, N={n_total}, c={c}) ==="


def format_score_line(score: NodeScore, tree: Tree, columns: Sequence[tuple[str, str]], show_reward: bool) -> str:
    """``Node N: UCB=..., parent=..., visits=..., [reward=...,] <label>=<metric>, ..., Mutation=...``."""
    node = tree.nodes[score.node_id]
    parent = "root" if score.parent is None else score.parent
    parts = [f"Node {score.node_id}: UCB={score.ucb:.3f}", f"parent={parent}", f"visits={score.visits}"]
    if score.reward is None:
        parts.append(f"failed={score.failure or 'yes'}")
    elif show_reward:
        pooled = f"±{score.spread:.3f} (n={score.n})" if score.n > 1 else ""
        parts.append(f"reward={score.reward:.3f}{pooled}")
    metrics = node.entry.metrics if node.entry else {}
    for label, metric in columns:
        value = metrics.get(metric)
        if value is not None:
            parts.append(f"{label}={value:.3f}" if math.isfinite(value) else f"{label}={format_number(value)}")
    if score.frozen:
        parts.append("frozen=yes")
    if node.entry and node.entry.mutation:
        parts.append(f"Mutation={node.entry.mutation}")
    return ", ".join(parts)


def format_scores(
    scores: list[NodeScore], tree: Tree, header: str, columns: Sequence[tuple[str, str]] = (), show_reward: bool = True
) -> str:
    """The scores file: the header, a blank line, one line per node in the given order.

    ``columns`` are ``(label, metric)`` pairs read from each node's entry.
    """
    lines = [header, ""] + [format_score_line(score, tree, columns, show_reward) for score in scores]
    return "\n".join(lines) + "\n"


def write_scores(
    path: str | os.PathLike,
    scores: list[NodeScore],
    tree: Tree,
    header: str,
    columns: Sequence[tuple[str, str]] = (),
    show_reward: bool = True,
) -> None:
    """Write the scores file atomically."""
    write_text_atomic(path, format_scores(scores, tree, header, columns, show_reward))

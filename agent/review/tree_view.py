"""The exploration tree in the terminal: one line per node, indented under its parent.

Owns the text form of the tree (rich): node id, pooled reward with spread and seed
count, class, slot and the mutation that made it; the best node starred, failed runs
in red, running ones marked.
"""

from __future__ import annotations

from rich.markup import escape
from rich.tree import Tree as RichTree

from agent.review.folder import ExplorationFiles, slot_name
from ucb.tree import Node

CLASS_STYLES = {"converged": "green", "partial": "yellow", "failed": "red"}


def node_label(node: Node, is_best: bool) -> str:
    """``3 ★ reward 0.754 ± 0.051 (2 seeds) partial slot_2 (...) · lr: 0.01 -> 0.03``."""
    if node.in_flight:
        return f"[bold]{node.id}[/bold] [cyan]running[/cyan]"
    style = CLASS_STYLES.get(node.classification, "white")
    if node.mean is None:
        reward = f"[red]failed: {escape(node.failure or 'no reward')}[/red]"
    else:
        seeds = f" ± {node.spread:.3f} ({len(node.rewards)} seeds)" if len(node.rewards) > 1 else ""
        reward = f"reward {node.mean:.3f}{seeds}"
    star = " [bold gold1]★ best[/bold gold1]" if is_best else ""
    slot = f" [dim]{escape(slot_name(node.entry))}[/dim]" if node.entry.slot is not None else ""
    return (
        f"[bold]{node.id}[/bold]{star} {reward} [{style}]{escape(node.classification)}[/{style}]{slot} · "
        f"{escape(node.entry.mutation)}"
    )


def rich_tree(files: ExplorationFiles) -> RichTree:
    tree = files.tree
    best = tree.best
    root = RichTree(f"[bold]{escape(files.name)}[/bold] ({len(tree.nodes)} nodes, {files.reward_label})")
    stack = [(root, node_id) for node_id in reversed(tree.roots)]
    while stack:
        branch, node_id = stack.pop()
        node = tree.nodes[node_id]
        child_branch = branch.add(node_label(node, best is not None and node.id == best.id))
        stack.extend((child_branch, child) for child in reversed(tree.children(node_id)))
    return root

"""The exploration tree in the terminal: one line per node, indented under its parent.

Owns the text form of the tree (rich), drawn from the same selection as the figure
(`ucb.outline.outline`): when the tree does not fit, runs of single-child nodes collapsed
(longest first) into one dimmed line listing the changes along them, and left-out
subtrees summarised in one line (nodes, best reward, failures). Each node line: id,
pooled reward with spread and seed count (or the failure, said once), class, slot and
the mutation that made it; the best node starred, its lineage's ids in bold gold, the
top UCB nodes tagged ``UCB #k``.

Without options every node is printed up to ``TERMINAL_BUDGET`` lines (beyond: chains
collapsed, then the best lineage, the frontier, running nodes and the best-rewarded
ones, the rest summarised); ``top=K`` prints only the best lineage and the top-K
frontier's lineages; ``depth=D`` leaves out nodes more than D mutations below the root.
The root line says what was shown.
"""

from __future__ import annotations

from rich.markup import escape
from rich.tree import Tree as RichTree

from agent.review.folder import ExplorationFiles, slot_name
from ucb.outline import Outline, failure_text, outline
from ucb.scores import DEFAULT_C
from ucb.tree import Node

CLASS_STYLES = {"converged": "green", "partial": "yellow", "failed": "red"}
LINEAGE_STYLE = "bold gold1"
MUTED_STYLE = "dim"
TERMINAL_BUDGET = 200  # lines printed without --top
FRONTIER_MARKED = 5  # UCB ranks tagged when --top is not given


def node_label(node: Node, view: Outline) -> str:
    """``3 ★ best reward 0.754 ± 0.051 (2 seeds) partial slot_2 (...) · lr: 0.01 -> 0.03 UCB #1``."""
    marks = f" [cyan]UCB #{view.frontier[node.id]}[/cyan]" if node.id in view.frontier else ""
    ident = f"[{LINEAGE_STYLE}]{node.id}[/{LINEAGE_STYLE}]" if node.id in view.lineage else f"[bold]{node.id}[/bold]"
    if node.in_flight:
        return f"{ident} [cyan]running[/cyan]"
    style = CLASS_STYLES.get(node.classification, "white")
    if node.mean is None:
        reward = f"[red]failed: {escape(failure_text(node.failure or 'no reward'))}[/red]"
    else:
        seeds = f" ± {node.spread:.3f} ({len(node.rewards)} seeds)" if len(node.rewards) > 1 else ""
        reward = f"reward {node.mean:.3f}{seeds}"
    star = " [bold gold1]★ best[/bold gold1]" if node.id == view.best_id else ""
    slot = f" [dim]{escape(slot_name(node.entry))}[/dim]" if node.entry.slot is not None else ""
    return (
        f"{ident}{star} {reward} [{style}]{escape(node.classification)}[/{style}]{slot} · "
        f"{escape(node.entry.mutation)}{marks}"
    )


def tree_outline(files: ExplorationFiles, top: int | None = None, depth: int | None = None) -> Outline:
    """What ``ucbx tree`` prints (see the module docstring)."""
    c = files.spec.exploration.ucb_c if files.spec else DEFAULT_C
    if top is not None:
        return outline(files.tree, top=top, budget=0, depth=depth, c=c)
    return outline(files.tree, top=FRONTIER_MARKED, budget=TERMINAL_BUDGET, depth=depth, c=c)


def rich_tree(files: ExplorationFiles, top: int | None = None, depth: int | None = None) -> RichTree:
    """The tree as a rich renderable; ``top`` and ``depth`` as in `tree_outline`."""
    view = tree_outline(files, top, depth)
    tree = files.tree
    root = RichTree(
        f"[bold]{escape(files.name)}[/bold] ({len(tree.nodes)} nodes, {files.reward_label})\n"
        f"[dim]{view.summary()}; ★ best, ids in bold gold: its lineage, UCB #k: the frontier[/dim]"
    )
    branches: list[RichTree] = []
    for row in view.rows:
        parent = root if row.parent is None else branches[row.parent]
        if row.node_id is None:
            branches.append(parent.add(f"[{MUTED_STYLE}]{escape(row.hidden.text())}[/{MUTED_STYLE}]"))
            continue
        label = node_label(tree.nodes[row.node_id], view)
        if row.chain is not None:
            label = f"[{MUTED_STYLE}]┊ {escape(row.chain.text(tree))}[/{MUTED_STYLE}]\n{label}"
        branches.append(parent.add(label))
    return root

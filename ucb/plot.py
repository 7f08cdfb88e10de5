"""A picture of the mutation tree (PNG): where the search went and what each step changed.

Owns the tree plot. Depth runs left to right, siblings are stacked, and the figure
grows with the number of leaves so that 200 nodes stay readable. Nodes are coloured by
class; failed runs are crossed, in-flight runs hollow, the best node ringed in gold;
each edge carries its mutation (``param=new``).
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from memory.notebook import parse_mutation  # noqa: E402
from ucb.tree import Node, Tree  # noqa: E402

CLASS_COLOURS = {"converged": "#2ecc71", "partial": "#f39c12", "failed": "#e74c3c"}
OTHER_COLOUR = "#95a5a6"
MAX_PIXELS = 30000
LEGEND_HEIGHT_IN = 0.45


def _layout(tree: Tree) -> dict[int, tuple[float, float]]:
    """(depth, row) per node: leaves take consecutive rows, a parent sits at its children's middle."""
    positions: dict[int, tuple[float, float]] = {}
    next_row = 0.0
    stack: list[tuple[int, int, bool]] = [(root, 0, False) for root in reversed(tree.roots)]
    while stack:
        node_id, depth, expanded = stack.pop()
        children = tree.children(node_id)
        if not children:
            positions[node_id] = (depth, next_row)
            next_row += 1
        elif expanded:
            rows = [positions[child][1] for child in children]
            positions[node_id] = (depth, (min(rows) + max(rows)) / 2)
        else:
            stack.append((node_id, depth, True))
            stack.extend((child, depth + 1, False) for child in reversed(children))
    return positions


def edge_label(node: Node) -> str:
    """The mutation that made ``node``, short: ``param=new`` or the start of the text."""
    text = node.entry.mutation if node.entry else "in flight"
    mutation = parse_mutation(text)
    if mutation:
        return f"{mutation.param}={mutation.new}"
    return text if len(text) <= 30 else text[:29] + "…"


def plot_tree(tree: Tree, path: str | os.PathLike, title: str = "") -> None:
    """Draw ``tree`` to a PNG file at ``path``."""
    positions = _layout(tree)
    depth = max((x for x, _ in positions.values()), default=0)
    rows = max((y for _, y in positions.values()), default=0) + 1
    width, height = max(8.0, 2.2 * (depth + 1) + 1), max(4.0, 0.3 * rows + 1.5)
    dpi = min(100, MAX_PIXELS / max(width, height))
    figure, axes = plt.subplots(figsize=(width, height), dpi=dpi)
    for node in tree.nodes.values():
        if node.parent is not None:
            _draw_edge(axes, node, positions[node.parent], positions[node.id])
    best = tree.best
    for node in tree.nodes.values():
        _draw_node(axes, node, positions[node.id], best is not None and node.id == best.id)
    axes.set_xlim(-0.5, depth + 0.7)
    axes.set_ylim(rows - 0.5, -0.8)
    axes.set_xlabel("depth (branching from root)")
    axes.set_yticks([])
    best_text = f"best: node {best.id}, reward {best.mean:.3f}" if best else "no finished node"
    axes.set_title(f"{title}  ({len(tree.nodes)} nodes; {best_text})".strip(), fontsize=10)
    figure.legend(handles=_legend(), loc="lower center", ncol=4, fontsize=7, frameon=False)
    figure.tight_layout(rect=(0, LEGEND_HEIGHT_IN / height, 1, 1))  # the legend below the axes, over no node
    figure.savefig(path, format="png")
    plt.close(figure)


def _draw_edge(axes, node: Node, start: tuple[float, float], end: tuple[float, float]) -> None:
    """An elbow from parent to child, the mutation written on the child's own row."""
    (x0, y0), (x1, y1) = start, end
    elbow = x0 + 0.15
    axes.plot(
        [x0, elbow, elbow, x1],
        [y0, y0, y1, y1],
        color="#7f8c8d",
        linewidth=0.8,
        zorder=1,
        linestyle="--" if node.in_flight else "-",
    )
    axes.text(x1 - 0.1, y1 - 0.08, edge_label(node), fontsize=6, ha="right", va="bottom", color="#34495e", zorder=4)


def _draw_node(axes, node: Node, position: tuple[float, float], is_best: bool) -> None:
    x, y = position
    colour = CLASS_COLOURS.get(node.classification, OTHER_COLOUR)
    if is_best:
        axes.scatter([x], [y], s=420, facecolors="none", edgecolors="gold", linewidths=2.5, zorder=2)
    if node.in_flight:
        axes.scatter([x], [y], s=150, facecolors="white", edgecolors="#34495e", linestyles="--", zorder=3)
    else:
        axes.scatter([x], [y], s=150, color=colour, edgecolors="#2c3e50", linewidths=0.5, zorder=3)
    if node.failed:
        axes.scatter([x], [y], s=150, marker="x", color="black", linewidths=1.5, zorder=5)
    label = str(node.id) + (f" ×{node.n_replicates + 1}" if node.n_replicates else "")
    axes.text(x + 0.06, y - 0.08, label, fontsize=6, ha="left", va="bottom", zorder=6)


def _legend() -> list[Line2D]:
    def dot(label: str, **style) -> Line2D:
        return Line2D([], [], linestyle="", marker=style.pop("marker", "o"), markersize=7, label=label, **style)

    handles = [dot(label, color=colour) for label, colour in CLASS_COLOURS.items()]
    handles += [
        dot("other class", color=OTHER_COLOUR),
        dot("failed run (crash, nan)", marker="x", color="black"),
        dot("in flight", markerfacecolor="white", markeredgecolor="#34495e"),
        dot("best node", markerfacecolor="none", markeredgecolor="gold", markeredgewidth=2),
    ]
    return handles

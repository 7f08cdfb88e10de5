"""A picture of the mutation tree (PNG and SVG): where the search went, readable at any size.

Owns the tree figure. The layout is an outline, shaped like a page: one line per drawn
node, depth indented to the right, so labels never cross and the figure grows only
downward. What is drawn is `ucb.outline.outline` with a line budget: a tree that fits
is drawn node by node; otherwise runs of single-child nodes are collapsed, longest first,
into one dotted edge labelled with the changes along them, and when that is not enough
the best node's lineage and the top-``top`` UCB frontier are drawn, then running and
best-rewarded nodes, everything else summarised per subtree (nodes, best reward,
failures). Nodes are coloured by class; failed runs are crossed, in-flight runs hollow,
the best node ringed in gold with its lineage in gold, frontier nodes ringed in blue.
The legend sits below the last line, over no node.

Bounds, at ``DPI``: the long side is at most ``MAX_SIDE_PX`` (the line budget is
lowered, then the frontier shortened, until the lines fit), every text is at least
``MIN_FONT_PT``. `plot_tree` writes the PNG and an SVG beside it (text kept as text,
so a reader can zoom and search). Node markers carry gids starting ``tree-node``.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from memory.notebook import parse_mutation  # noqa: E402
from ucb.outline import Outline, Row, failure_text, outline  # noqa: E402
from ucb.scores import DEFAULT_C  # noqa: E402
from ucb.tree import Node, Tree  # noqa: E402

DPI = 100
MAX_SIDE_PX = 2400
MIN_FONT_PT = 7
FONT_PT = 8
TITLE_PT = 11
DEFAULT_TOP = 5  # frontier nodes drawn with their lineages
DEFAULT_BUDGET = 60  # lines of the outline
MARGIN_IN = 0.3
HEADER_IN = 0.75  # title and summary line
ROW_IN = 0.26
INDENT_IN = 0.24  # per level of depth ...
MIN_INDENT_IN = 0.12
MAX_INDENT_AREA_IN = 7.0  # ... narrowed so that the deepest line starts within this
LABEL_GAP_IN = 0.14  # node centre to label start (clears the largest ring)
MIN_WIDTH_IN = 8.5
MAX_LABEL_CHARS = 150
LEGEND_COLUMNS = 4
LEGEND_GAP_IN = 0.2
DOT_PT, RING_PT = 8.0, 13.0  # marker diameters
CLASS_COLOURS = {"converged": "#2ecc71", "partial": "#f39c12", "failed": "#e74c3c"}
OTHER_COLOUR = "#95a5a6"
BEST_COLOUR = "#d4a017"
FRONTIER_COLOUR = "#2471a3"
EDGE_COLOUR = "#7f8c8d"
MUTED_COLOUR = "#566573"
LINE_STYLES = {  # edges: plain, on the best lineage, and dotted (a collapsed chain, a running node, left-out nodes)
    "edge": {"colors": EDGE_COLOUR, "linewidths": 0.9},
    "lineage": {"colors": BEST_COLOUR, "linewidths": 2.2},
    "edge-dotted": {"colors": EDGE_COLOUR, "linewidths": 1.0, "linestyles": ":"},
    "lineage-dotted": {"colors": BEST_COLOUR, "linewidths": 2.2, "linestyles": ":"},
}


def edge_label(node: Node) -> str:
    """The mutation that made ``node``, short: ``param=new`` or the start of the text."""
    text = node.entry.mutation if node.entry else "in flight"
    mutation = parse_mutation(text)
    if mutation:
        return f"{mutation.param}={mutation.new}"
    return text if len(text) <= 30 else text[:29] + "…"


def node_text(node: Node, view: Outline) -> str:
    """``17 ×2  0.812 ± 0.020  slot 2  lr_node_homeo: 0.01 → 0.03  ★ best  UCB #1``."""
    parts = [str(node.id) + (f" ×{node.evaluations}" if node.n_replicates else "")]
    if node.in_flight:
        parts.append("running")
    elif node.mean is None:
        parts.append(f"failed ({failure_text(node.failure or 'no reward')})")
    else:
        parts.append(f"{node.mean:.3f}" + (f" ± {node.spread:.3f}" if len(node.rewards) > 1 else ""))
    if node.entry is not None:
        if node.entry.slot is not None:
            parts.append(f"slot {node.entry.slot}")
        mutation = parse_mutation(node.entry.mutation)
        parts.append(f"{mutation.param}: {mutation.old} → {mutation.new}" if mutation else node.entry.mutation)
    parts += ["★ best"] if node.id == view.best_id else []
    parts += [f"UCB #{view.frontier[node.id]}"] if node.id in view.frontier else []
    return _cut("  ".join(part for part in parts if part))


def _cut(text: str) -> str:
    return text if len(text) <= MAX_LABEL_CHARS else text[: MAX_LABEL_CHARS - 1] + "…"


def fitting_outline(tree: Tree, top: int, depth: int | None, c: float, budget: int) -> Outline:
    """The outline within the lines a figure of ``MAX_SIDE_PX`` holds: a smaller frontier if need be."""
    most = int((MAX_SIDE_PX / DPI - HEADER_IN - 2 * MARGIN_IN - LEGEND_GAP_IN - 0.8) / ROW_IN) - 1
    budget = min(budget, most)
    view = outline(tree, top=top, budget=budget, depth=depth, c=c)
    while view.lines > most and top > 0:
        top //= 2
        view = outline(tree, top=top, budget=budget, depth=depth, c=c)
    return view


def tree_figure(
    tree: Tree,
    title: str = "",
    *,
    top: int = DEFAULT_TOP,
    depth: int | None = None,
    budget: int = DEFAULT_BUDGET,
    c: float = DEFAULT_C,
) -> plt.Figure:
    """The tree figure (see the module docstring); the caller saves and closes it."""
    view = fitting_outline(tree, top, depth, c, budget)
    figure = plt.figure(figsize=(MIN_WIDTH_IN, 4.0), dpi=DPI)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.axis("off")
    renderer = figure.canvas.get_renderer()
    legend = figure.legend(
        handles=_legend(view),
        loc="lower left",
        bbox_to_anchor=(MARGIN_IN, MARGIN_IN),
        bbox_transform=figure.dpi_scale_trans,
        ncol=LEGEND_COLUMNS,
        fontsize=FONT_PT,
        frameon=False,
        borderaxespad=0,
    )
    legend_box = legend.get_window_extent(renderer)
    lines = max(view.lines, 1) + 1  # the root's line
    height = HEADER_IN + lines * ROW_IN + LEGEND_GAP_IN + legend_box.height / DPI + 2 * MARGIN_IN
    texts = _header(axes, tree, view, title) + _draw_outline(axes, tree, view)
    right = max((x + text.get_window_extent(renderer).width / DPI for x, text in texts), default=0.0)
    width = max(MIN_WIDTH_IN, right + MARGIN_IN, legend_box.width / DPI + 2 * MARGIN_IN)
    figure.set_size_inches(width, height)
    axes.set_xlim(0, width)
    axes.set_ylim(height, 0)
    return figure


def plot_tree(tree: Tree, path: str | os.PathLike, title: str = "", **options) -> Path:
    """Draw ``tree`` to a PNG at ``path`` and an SVG beside it; return the SVG's path.

    ``options``: ``top``, ``depth``, ``budget``, ``c`` of `tree_figure`.
    """
    path = Path(path)
    figure = tree_figure(tree, title, **options)
    figure.savefig(path, format="png", dpi=DPI)
    svg = path.with_suffix(".svg")
    with plt.rc_context({"svg.fonttype": "none"}):
        figure.savefig(svg, format="svg", dpi=DPI)
    plt.close(figure)
    return svg


# ---------------------------------------------------------------- drawing


def _header(axes, tree: Tree, view: Outline, title: str) -> list[tuple[float, plt.Text]]:
    best = tree.nodes.get(view.best_id) if view.best_id is not None else None
    best_text = f"best node {best.id}, reward {best.mean:.3f}" if best else "no finished node"
    heading = f"{title}: {len(tree.nodes)} nodes; {best_text}" if title else f"{len(tree.nodes)} nodes; {best_text}"
    frontier = f"; ringed in blue: the top {len(view.frontier)} by UCB" if view.frontier else ""
    first = axes.text(MARGIN_IN, MARGIN_IN, heading, fontsize=TITLE_PT, fontweight="bold", va="top")
    second = axes.text(MARGIN_IN, MARGIN_IN + 0.27, view.summary() + frontier, fontsize=FONT_PT + 1, va="top")
    return [(MARGIN_IN, first), (MARGIN_IN, second)]


def _indent(view: Outline) -> float:
    deepest = max((row.depth for row in view.rows), default=0) + 1
    return max(MIN_INDENT_IN, min(INDENT_IN, MAX_INDENT_AREA_IN / deepest))


class _Canvas:
    """Positions (inches from the top left) and the artists collected while walking the rows."""

    def __init__(self, axes, view: Outline):
        self.axes, self.view, self.indent = axes, view, _indent(view)
        self.line = 0
        self.segments: dict[str, list] = {kind: [] for kind in LINE_STYLES}
        self.markers: dict[str, list[tuple[float, float]]] = {}
        self.texts: list[tuple[float, plt.Text]] = []

    def x(self, depth: int) -> float:
        return MARGIN_IN + DOT_PT / 144 + depth * self.indent

    def next_y(self) -> float:
        y = HEADER_IN + (self.line + 0.5) * ROW_IN
        self.line += 1
        return y

    def text(self, x: float, y: float, text: str, **style) -> None:
        artist = self.axes.text(x, y, text, fontsize=FONT_PT, va="center", ha="left", zorder=6, **style)
        self.texts.append((x, artist))

    def mark(self, kind: str, x: float, y: float) -> None:
        self.markers.setdefault(kind, []).append((x, y))


def _draw_outline(axes, tree: Tree, view: Outline) -> list[tuple[float, plt.Text]]:
    canvas = _Canvas(axes, view)
    root = (canvas.x(0), canvas.next_y())
    canvas.mark("root", *root)
    canvas.text(root[0] + LABEL_GAP_IN, root[1], "root (the base config)", color=MUTED_COLOUR)
    if not view.rows:
        canvas.text(canvas.x(1), canvas.next_y(), "no node yet", color=MUTED_COLOUR)
    places: list[tuple[float, float]] = []
    for row in view.rows:
        parent = root if row.parent is None else places[row.parent]
        places.append(_draw_row(canvas, tree, row, parent))
    _flush(axes, canvas)
    return canvas.texts


def _draw_row(canvas: _Canvas, tree: Tree, row: Row, parent: tuple[float, float]) -> tuple[float, float]:
    """One row (and its chain line above it); returns where its node sits."""
    view, x = canvas.view, canvas.x(row.depth + 1)
    if row.node_id is None:
        y = canvas.next_y()
        canvas.segments["edge-dotted"].append([parent, (parent[0], y), (x, y)])
        canvas.mark("hidden", x, y)
        canvas.text(x + LABEL_GAP_IN, y, _cut(row.hidden.text()), color=MUTED_COLOUR, style="italic")
        return x, y
    node = tree.nodes[row.node_id]
    kind = "lineage" if row.node_id in view.lineage else "edge"
    start = parent
    if row.chain is not None:
        y_chain = canvas.next_y()
        canvas.segments[kind].append([parent, (parent[0], y_chain), (x, y_chain)])
        canvas.text(x + LABEL_GAP_IN, y_chain, _cut(row.chain.text(tree)), color=MUTED_COLOUR, style="italic")
        start = (x, y_chain)
    y = canvas.next_y()
    if row.chain is not None:
        canvas.segments[f"{kind}-dotted"].append([start, (x, y)])
    else:
        canvas.segments["edge-dotted" if node.in_flight else kind].append([parent, (parent[0], y), (x, y)])
    _mark_node(canvas, node, x, y)
    weight = "bold" if row.node_id in view.lineage else "normal"
    colour = "#922b21" if node.is_failure else "black"
    canvas.text(x + LABEL_GAP_IN, y, node_text(node, view), fontweight=weight, color=colour)
    return x, y


def _mark_node(canvas: _Canvas, node: Node, x: float, y: float) -> None:
    view = canvas.view
    if node.in_flight:
        canvas.mark("running", x, y)
    else:
        canvas.mark(node.classification if node.classification in CLASS_COLOURS else "other", x, y)
    if node.is_failure:
        canvas.mark("cross", x, y)
    if node.id == view.best_id:
        canvas.mark("best", x, y)
    if node.id in view.frontier:
        canvas.mark("frontier", x, y)


def _marker_styles() -> dict[str, dict]:
    dot = DOT_PT**2
    ring = RING_PT**2
    styles = {
        name: {"s": dot, "color": colour, "edgecolors": "#2c3e50", "linewidths": 0.5}
        for name, colour in CLASS_COLOURS.items()
    }
    styles["other"] = {"s": dot, "color": OTHER_COLOUR, "edgecolors": "#2c3e50", "linewidths": 0.5}
    styles["running"] = {"s": dot, "facecolors": "white", "edgecolors": "#34495e", "linestyles": "--"}
    styles["cross"] = {"s": dot, "marker": "x", "color": "black", "linewidths": 1.2}
    styles["best"] = {"s": ring, "facecolors": "none", "edgecolors": BEST_COLOUR, "linewidths": 2.2}
    styles["frontier"] = {"s": ring * 0.8, "facecolors": "none", "edgecolors": FRONTIER_COLOUR, "linewidths": 1.4}
    styles["root"] = {"s": dot, "marker": "s", "color": "#2c3e50"}
    styles["hidden"] = {"s": dot * 0.6, "marker": ">", "color": OTHER_COLOUR}
    return styles


def _flush(axes, canvas: _Canvas) -> None:
    """Edges under the markers; node markers get ``tree-node-*`` gids (the tests find them by it)."""
    for kind, segments in canvas.segments.items():
        if segments:
            axes.add_collection(LineCollection(segments, zorder=1, **LINE_STYLES[kind]))
    styles = _marker_styles()
    for kind, points in canvas.markers.items():
        xs, ys = zip(*points)
        gid = f"tree-node-{kind}" if kind not in ("root", "hidden") else f"tree-{kind}"
        axes.scatter(xs, ys, zorder=3 if kind not in ("cross", "best", "frontier") else 4, gid=gid, **styles[kind])


def _legend(view: Outline) -> list[Line2D]:
    def dot(label: str, **style) -> Line2D:
        return Line2D([], [], linestyle="", marker=style.pop("marker", "o"), markersize=7, label=label, **style)

    handles = [dot(label, color=colour) for label, colour in CLASS_COLOURS.items()]
    handles += [
        dot("other class", color=OTHER_COLOUR),
        dot("failed run (crash, nan)", marker="x", color="black"),
        dot("in flight", markerfacecolor="white", markeredgecolor="#34495e"),
        dot("best node", markerfacecolor="none", markeredgecolor=BEST_COLOUR, markeredgewidth=2),
        Line2D([], [], color=BEST_COLOUR, linewidth=2.2, label="best node's lineage"),
        dot(f"UCB frontier (top {len(view.frontier)})", markerfacecolor="none", markeredgecolor=FRONTIER_COLOUR),
        Line2D([], [], color=EDGE_COLOUR, linestyle=":", label="collapsed chain / running"),
        dot("left out (summarised)", marker=">", color=OTHER_COLOUR),
    ]
    return handles

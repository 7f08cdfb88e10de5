"""ucb/plot.py: a 200-node tree drawn to a PNG (and an SVG) that stays readable and bounded."""

from __future__ import annotations

import math
import random

import matplotlib.image

from memory.notebook import Entry
from ucb.plot import DEFAULT_BUDGET, DEFAULT_TOP, MAX_SIDE_PX, edge_label, fitting_outline, plot_tree
from ucb.scores import DEFAULT_C
from ucb.tree import Tree


def random_tree(n: int, seed: int = 0) -> Tree:
    rng = random.Random(seed)
    entries = []
    for node_id in range(1, n + 1):
        parent = rng.choice([None, *range(max(1, node_id - 12), node_id)]) if node_id > 1 else None
        value = rng.choice([rng.random(), math.nan]) if node_id % 17 == 0 else rng.random()
        status = rng.choice(["converged", "partial", "failed"])
        mode = "replicate" if node_id % 23 == 0 and parent else "exploit"
        entries.append(
            Entry(
                node_id,
                status,
                node_id,
                parent,
                mode=mode,
                metrics={"score": value},
                mutation=f"lr_node_homeo: {value:.3f} -> {value / 2:.3f}",
            )
        )
    return Tree.from_entries(entries, metric="score", in_flight=[(n + 1, 5), (n + 2, 9)])


def test_plot_of_200_nodes(tmp_path):
    path = tmp_path / "tree.png"
    tree = random_tree(200)
    svg = plot_tree(tree, path, title="demo")
    image = matplotlib.image.imread(path)
    height, width = image.shape[:2]
    view = fitting_outline(tree, DEFAULT_TOP, None, DEFAULT_C, DEFAULT_BUDGET)
    assert max(height, width) <= MAX_SIDE_PX
    assert height / (view.lines + 1) >= 25  # at least 25 pixels per line of the outline
    assert view.lines >= 40  # a 200-node tree fills most of the budget: not shrunk to a stub
    assert width >= 800
    assert svg == path.with_suffix(".svg") and "<svg" in svg.read_text()


def test_edge_labels_are_short():
    tree = random_tree(5)
    assert edge_label(tree.nodes[2]).startswith("lr_node_homeo=")
    assert edge_label(tree.nodes[6]) == "in flight"

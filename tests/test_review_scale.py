"""Review at campaign scale: every figure, and `ucbx tree`, from 48-, 500- and 5,000-entry logs.

The logs and renders come from benchmarks/review_figures.py (which also times them):
`benchmarks.overhead.campaign_log` (the demo spec's Config and reward metrics on
`benchmarks.ucb_scaling.synthetic_log`'s bushy tree) and `synthetic_log(n, "chain")` (one
long single-child chain, the worst case for depth). Bounds checked on each figure: the
PNG's long side at most 2400 px, every text at least 7 pt; on the tree figure also: no
text over a node marker, no two texts over each other, the legend over no node. Render
times are in BENCHMARKS.md, not asserted here.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.transforms import Bbox
from review_helpers import review
from rich.console import Console

from agent.review import plots
from agent.review.folder import ExplorationFiles
from agent.review.tree_view import TERMINAL_BUDGET, node_label, rich_tree, tree_outline
from benchmarks.review_figures import RENDERERS, SIZES, campaign_files, chain_files, drawn_texts, render_figures
from benchmarks.ucb_scaling import synthetic_log
from memory.notebook import Entry, format_entry
from ucb.outline import describe_changes, outline
from ucb.plot import DEFAULT_BUDGET
from ucb.tree import Tree

MAX_SIDE_PX = 2400
MIN_FONT_PT = 7
METRIC = "avg_slope_ratio"
TOUCH_PX = 0.5  # boxes that only touch do not overlap


def render(files: ExplorationFiles, out: Path, names=tuple(RENDERERS)) -> dict[str, tuple]:
    """name -> (Figure, PNG path) of the review figures of ``files``."""
    return {name: found[:2] for name, found in render_figures(files, out, names).items()}


@pytest.fixture(scope="module", params=SIZES, ids=lambda n: f"{n}-entries")
def campaign(request, tmp_path_factory):
    """A bushy campaign of n entries with the demo spec, and its four figures."""
    folder = tmp_path_factory.mktemp(f"campaign{request.param}")
    files = campaign_files(folder, request.param)
    return files, render(files, folder / "report")


@pytest.fixture(scope="module", params=SIZES, ids=lambda n: f"{n}-chain")
def chain(request, tmp_path_factory):
    """A bare log of n entries, each the child of the one before, and its tree figure."""
    folder = tmp_path_factory.mktemp(f"chain{request.param}")
    files = chain_files(folder, request.param)
    return files, render(files, folder / "report", ["tree"])["tree"]


def marker_boxes(figure) -> list[Bbox]:
    """The display box of every node marker of the tree (collections whose gid starts ``tree-node``)."""
    boxes = []
    for axes in figure.axes:
        for collection in axes.collections:
            if not (collection.get_gid() or "").startswith("tree-node"):
                continue
            centres = collection.get_offset_transform().transform(collection.get_offsets())
            sizes = np.broadcast_to(collection.get_sizes(), len(centres))
            for (x, y), size in zip(centres, sizes):
                radius = math.sqrt(size) / 2 * figure.dpi / 72
                boxes.append(Bbox.from_extents(x - radius, y - radius, x + radius, y + radius))
    return boxes


def overlap(a: Bbox, b: Bbox) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > TOUCH_PX and min(a.y1, b.y1) - max(a.y0, b.y0) > TOUCH_PX


def assert_bounded(figure, png: Path) -> None:
    height, width = matplotlib.image.imread(png).shape[:2]
    assert max(height, width) <= MAX_SIDE_PX, f"{png.name}: {width} x {height} px"
    small = {
        (text.get_text()[:40], text.get_fontsize()) for text in drawn_texts(figure) if text.get_fontsize() < MIN_FONT_PT
    }
    assert not small, f"{png.name}: texts under {MIN_FONT_PT} pt: {sorted(small)[:5]}"


def assert_tree_legible(figure) -> None:
    """No text over a node marker or another text; the legend over no node."""
    canvas = FigureCanvasAgg(figure)  # a closed figure has lost its canvas
    canvas.draw()
    renderer = canvas.get_renderer()
    markers = marker_boxes(figure)
    texts = [(text.get_text(), text.get_window_extent(renderer)) for text in drawn_texts(figure)]
    assert markers and len(texts) > 2
    for label, box in texts:
        hit = [marker for marker in markers if overlap(box, marker)]
        assert not hit, f"text {label[:50]!r} covers a node marker at {hit[0]}"
    for index, (label, box) in enumerate(texts):
        for other, other_box in texts[index + 1 :]:
            assert not overlap(box, other_box), f"texts overlap: {label[:40]!r} and {other[:40]!r}"
    for legend in figure.legends:
        box = legend.get_window_extent(renderer)
        assert not any(overlap(box, marker) for marker in markers), "the legend covers a node"


# ---------------------------------------------------------------- figures


@pytest.mark.parametrize("name", RENDERERS)
def test_every_figure_is_bounded_in_size_and_font(campaign, name):
    _, figures = campaign
    figure, png = figures[name]
    assert_bounded(figure, png)


def test_tree_figure_is_legible_and_has_an_svg(campaign):
    files, figures = campaign
    figure, png = figures["tree"]
    assert_tree_legible(figure)
    svg = png.with_suffix(".svg").read_text()
    assert svg.startswith("<?xml")
    assert re.search(rf">{files.tree.best.id}( ×\d+)?  [^<]*★ best</text>", svg)  # text kept as text: searchable


def test_chain_collapses_into_one_labelled_edge_when_it_does_not_fit(chain):
    files, (figure, png) = chain
    assert_bounded(figure, png)
    assert_tree_legible(figure)
    labels = [text.get_text() for text in drawn_texts(figure)]
    chains = [label for label in labels if re.match(r"\d+ steps: lr_node_homeo ×3 ", label)]
    nodes = [label for label in labels if re.match(r"\d+( ×\d+)?  ", label)]
    if len(files.tree.nodes) < DEFAULT_BUDGET:  # fits: every node on its own line
        assert not chains and len(nodes) == len(files.tree.nodes)
    else:
        assert chains and len(nodes) <= 12, labels
    best = files.tree.best.id
    assert any(label.startswith(f"{best}  ") and "★ best" in label for label in labels)


def test_the_longest_chains_collapse_first():
    """A 20-long and a 5-long chain under one root: a budget that the long one's collapse
    meets leaves the short one drawn node by node."""
    entries = [Entry(1, "partial", 1, None, metrics={METRIC: 0.5})]
    for start, length in ((2, 20), (30, 5)):
        for node_id in range(start, start + length):
            parent = 1 if node_id == start else node_id - 1
            entries.append(Entry(node_id, "partial", node_id, parent, metrics={METRIC: 0.1}, mutation="lr: 1 -> 2"))
    tree = Tree.from_entries(entries, metric=METRIC)
    assert outline(tree, top=0, budget=30).lines == 26 and not any(row.chain for row in outline(tree, 0, 30).rows)
    view = outline(tree, top=0, budget=15)
    assert [len(row.chain.node_ids) for row in view.rows if row.chain] == [19]  # all but the leaf
    assert view.lines == 1 + 2 + 5  # root node, chain line + its leaf, the short chain's 5 nodes


def test_chain_text_names_the_changes_along_it():
    values = [3e-5 * 1.5**step for step in range(9)]
    mutations = [f"lr_node_homeo: {old:.3g} -> {new:.3g}" for old, new in zip(values, values[1:])]
    assert describe_changes(mutations) == "lr_node_homeo ×1.5 eight times: 3e-05 → 0.000769"
    assert describe_changes([*mutations[:2], "batch_size: 8 -> 16", "None (baseline)"]) == (
        "lr_node_homeo ×1.5 twice: 3e-05 → 6.75e-05; batch_size: 8 → 16; 1 other change"
    )


@pytest.mark.parametrize("budget", [0, 40])
def test_the_best_lineage_and_frontier_are_kept_beyond_the_budget(campaign, budget):
    files, _ = campaign
    tree = files.tree
    view = outline(tree, top=5, budget=budget)
    assert view.lines <= 40
    drawn = {row.node_id for row in view.rows if row.node_id is not None}
    collapsed = {node_id for row in view.rows if row.chain for node_id in row.chain.node_ids}
    for node_id in view.lineage | _lineages(tree, view.frontier):
        assert node_id in drawn | collapsed
    assert set(view.frontier) <= drawn and tree.best.id in drawn
    hidden = sum(row.hidden.nodes for row in view.rows if row.hidden)
    hidden += sum(row.chain.hidden.nodes for row in view.rows if row.chain and row.chain.hidden)
    assert len(drawn) + len(collapsed) + hidden == len(tree.nodes)  # every node drawn, collapsed or counted


def _lineages(tree, node_ids) -> set[int]:
    return {member for node_id in node_ids for member in [node_id, *tree.ancestors(node_id)]}


# ---------------------------------------------------------------- progress


HAND_LOG = """## Iter 1: partial
Node: id=1, parent=root
Metrics: score=0.5
Mutation: none (baseline)

## Iter 2: partial
Node: id=2, parent=1
Metrics: score=0.9
Mutation: lr: 0.01 -> 0.02

## Iter 3: partial
Node: id=3, parent=2
Mode/Strategy: replicate
Metrics: score=0.05
Mutation: replicate of node 2 (seed 0 -> 1)
"""


def test_progress_draws_best_run_and_best_pooled_node(tmp_path):
    (tmp_path / "hand_analysis.md").write_text(HAND_LOG)
    files = ExplorationFiles.open(tmp_path, None, None, "score")
    assert plots.best_run_so_far(files) == [(1, 0.5), (2, 0.9), (3, 0.9)]
    assert plots.best_so_far(files) == [(1, 0.5), (2, 0.9), (3, 0.5)]  # the replicate pulls node 2 below node 1
    figure, _ = render(files, tmp_path / "report", ["progress"])["progress"]
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert "best single run so far" in legend and any(text.startswith("best node so far") for text in legend)
    lines = {line.get_label(): list(line.get_ydata()) for line in figure.axes[0].get_lines()}
    assert lines["best single run so far"] == [0.5, 0.9, 0.9]
    assert lines[plots.BEST_NODE_LABEL.format(once="")] == [0.5, 0.9, 0.5]
    assert plots.best_so_far(files) == plots.best_so_far_rebuilt(files)


@pytest.mark.parametrize("wanted", [0, 2])
def test_best_so_far_in_one_pass_equals_a_tree_per_prefix(tmp_path, wanted):
    odd = [
        Entry(201, "partial", 201, 203, mode="replicate", metrics={METRIC: 50.0}),  # before its node: a node
        Entry(202, "partial", 203, 1, metrics={METRIC: 0.5}),  # now it pools: 25.25
        Entry(203, "partial", 1, None, metrics={METRIC: 60.0}),  # node 1 written again (a rebuild)
        Entry(204, "partial", 204, 1, metrics={METRIC: 100.0}),
        Entry(205, "partial", 205, 204, mode="replicate", metrics={METRIC: -100.0}),  # the best falls to 0
        Entry(206, "partial", 206, 201, mode="replicate", metrics={METRIC: 500.0}),  # via 201 into 203: 183.5
    ]
    log = tmp_path / "mixed_analysis.md"
    log.write_text(synthetic_log(200, "bushy") + "".join(format_entry(entry) for entry in odd))
    files = ExplorationFiles.open(tmp_path, None, log, METRIC)
    files.tree.replicates_wanted = wanted
    assert plots.best_so_far(files) == plots.best_so_far_rebuilt(files)


# ---------------------------------------------------------------- terminal


def tree_lines(files: ExplorationFiles, top: int | None = None, depth: int | None = None) -> list[str]:
    """What ``ucbx tree`` prints for ``files``, as plain lines."""
    console = Console(file=io.StringIO(), width=240, color_system=None)
    console.print(rich_tree(files, top, depth))
    return console.file.getvalue().splitlines()


NODE_LINE = re.compile(r"^[\s│├└─]*(\d+) (?:★ best )?(?:reward|failed|running)")


def printed_nodes(lines: list[str]) -> list[int]:
    return [int(match.group(1)) for match in map(NODE_LINE.match, lines) if match]


def test_terminal_tree_collapses_a_chain_that_does_not_fit(chain):
    files, _ = chain
    lines = tree_lines(files)
    if len(files.tree.nodes) < TERMINAL_BUDGET:  # fits: every node printed
        assert len(printed_nodes(lines)) == len(files.tree.nodes)
    else:
        assert len(lines) <= 20
        assert any(re.search(r"┊ \d+ steps: lr_node_homeo ×3 ", line) for line in lines)
    assert f"{files.tree.best.id} ★ best" in "\n".join(lines)


def test_terminal_tree_top_and_depth(campaign):
    files, _ = campaign
    tree = files.tree
    view = tree_outline(files, top=3)
    lines = tree_lines(files, top=3)
    assert sum(bool(re.search(r"UCB #\d", line)) for line in lines) == len(view.frontier) == 3
    assert set(printed_nodes(lines)) == {row.node_id for row in view.rows if row.node_id is not None}
    assert tree.best.id in printed_nodes(lines)
    lines = tree_lines(files, depth=2)
    shown = printed_nodes(lines)
    assert shown and all(len(tree.ancestors(node_id)) <= 2 for node_id in shown)
    assert any(len(tree.ancestors(node_id)) == 2 for node_id in shown)
    assert any(line.lstrip("│├└─ ").startswith("+") for line in lines)  # deeper nodes summarised


def test_tree_command_takes_top_depth_and_writes_an_svg(capsys, tmp_path):
    files = campaign_files(tmp_path, SIZES[0])
    status, out, _ = review(capsys, "tree", "--log", files.log_path, "--top", "2")
    assert status == 0 and sum(bool(re.search(r"UCB #\d", line)) for line in out.splitlines()) == 2
    status, out, _ = review(capsys, "tree", "--log", files.log_path, "--depth", "1")
    shown = printed_nodes(out.splitlines())
    assert status == 0 and shown and all(len(files.tree.ancestors(node_id)) <= 1 for node_id in shown)
    status, out, _ = review(capsys, "tree", "--log", files.log_path, "--top", "2", "--plot", tmp_path / "t.png")
    assert status == 0 and (tmp_path / "t.png").is_file() and (tmp_path / "t.svg").is_file()


@pytest.mark.parametrize("option", ["--top", "--depth"])
def test_tree_command_refuses_a_negative_top_or_depth(capsys, tmp_path, option):
    files = campaign_files(tmp_path, SIZES[0])
    with pytest.raises(SystemExit) as exit_info:
        review(capsys, "tree", "--log", files.log_path, option, "-1")
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_info.value.code == 2
    assert error.endswith(f"argument {option}: must be 0 or more, not -1"), error


def test_terminal_tree_highlights_the_best_lineage(campaign):
    files, _ = campaign
    view = tree_outline(files)
    for row in view.rows:
        if row.node_id is not None:
            label = node_label(files.tree.nodes[row.node_id], view)
            highlighted = label.startswith(f"[bold gold1]{row.node_id}[/bold gold1]")
            assert highlighted == (row.node_id in view.lineage), label


def test_terminal_tree_says_a_failure_once(capsys, tmp_path):
    log = tmp_path / "fail_analysis.md"
    log.write_text(
        "## Iter 1: partial\nNode: id=1, parent=root\nMetrics: score=0.5\nMutation: none\n\n"
        "## Iter 2: failed\nNode: id=2, parent=1\nMetrics: score=nan, diverged=1\nMutation: lr: 0.1 -> 1\n"
        "Failure: diverged: diverged: 1\n"
    )
    status, out, _ = review(capsys, "tree", "--log", log, "--metric", "score")
    assert status == 0
    assert "failed: diverged: 1" in out and "diverged: diverged" not in out

"""ucb/tree.py and ucb/scores.py: the tree from entries, replicates, failures, virtual visits, PUCT."""

from __future__ import annotations

import math

import pytest

from memory.notebook import Entry, parse_notebook
from ucb.rewards import Guard, Objective, RewardTerm
from ucb.scores import block_members, choose_parent, format_scores, puct, scores_header, total_visits, write_scores
from ucb.tree import Tree

C = 1.414


def entry(node_id: int, parent: int | None, value: float | None = None, **fields) -> Entry:
    metrics = {} if value is None else {"score": value}
    return Entry(
        iteration=fields.pop("iteration", node_id),
        status="partial",
        node_id=node_id,
        parent=parent,
        metrics=metrics,
        mutation=fields.pop("mutation", f"lr: 0.{node_id} -> 0.{node_id + 1}"),
        **fields,
    )


def by_id(scores):
    return {score.node_id: score for score in scores}


def test_structure_queries():
    tree = Tree.from_entries(
        [entry(1, None, 0.1), entry(2, 1, 0.2), entry(3, 1, 0.3), entry(4, 3, 0.4), entry(5, None, 0.9)], metric="score"
    )
    assert tree.roots == [1, 5]
    assert tree.children(1) == [2, 3] and tree.children(4) == []
    assert sorted(tree.descendants(1)) == [2, 3, 4]
    assert tree.ancestors(4) == [3, 1]
    assert tree.best.id == 5
    assert tree.visits() == {1: 4, 5: 1, 2: 1, 3: 2, 4: 1}
    assert tree.subtrees({3, 99}) == {3, 4}


def test_puct_is_the_public_formula():
    tree = Tree.from_entries([entry(1, None, 0.5), entry(2, 1, 0.7), entry(3, 2, 0.6)], metric="score")
    scores = by_id(puct(tree, C))
    n_total = 3
    for node_id, reward, visits in [(1, 0.5, 3), (2, 0.7, 2), (3, 0.6, 1)]:
        assert scores[node_id].visits == visits
        assert scores[node_id].ucb == pytest.approx(reward + C * math.sqrt(n_total) / (1 + visits))
    assert [score.node_id for score in puct(tree, C)] == [3, 2, 1]


def test_replicates_pool_into_their_node_and_are_never_parents():
    entries = [
        entry(1, None, 0.6),
        entry(2, 1, 0.8, mode="replicate", mutation="replicate of node 1 (seed 1 -> 2)"),
        entry(3, 2, 0.7, mode="replicate"),
        entry(4, 3, 0.5),
        entry(5, 1, math.nan, mode="replicate"),
    ]
    tree = Tree.from_entries(entries, metric="score")
    assert list(tree.nodes) == [1, 4]
    node = tree.nodes[1]
    assert node.rewards == [0.6, 0.8, 0.7] and node.n_replicates == 3
    assert node.mean == pytest.approx(0.7) and node.spread == pytest.approx(0.1)
    assert tree.nodes[4].parent == 1  # a replicate's id as parent means its node
    scores = by_id(puct(tree, C))
    assert scores[1].visits == 5 and scores[4].visits == 1
    assert total_visits(tree) == 5
    assert scores[1].ucb == pytest.approx(0.7 + C * math.sqrt(5) / 6)


def test_failures_are_visits_with_a_mark_not_zero_scores():
    entries = [entry(1, None, 0.4), entry(2, 1, math.nan), entry(3, 1, failure="diverged: nan in loss"), entry(4, 1)]
    tree = Tree.from_entries(entries, metric="score")
    assert [tree.nodes[i].failure for i in (2, 3, 4)] == ["nan: score", "diverged: nan in loss", "missing: score"]
    assert all(tree.nodes[i].is_failure and tree.nodes[i].reward is None for i in (2, 3, 4))
    scores = by_id(puct(tree, C))
    assert scores[1].visits == 4
    assert scores[2].reward is None and scores[2].ucb == pytest.approx(C * 2 / 2)
    assert scores[2].ucb > scores[1].ucb  # listed by UCB ...
    assert choose_parent(puct(tree, C)).node_id == 1  # ... but never chosen while a real node exists
    text = format_scores(puct(tree, C), tree, "=== h ===", columns=(("score", "score"),))
    assert "Node 3: UCB=1.414, parent=1, visits=1, failed=diverged: nan in loss, Mutation=lr: 0.3 -> 0.4" in text
    assert tree.best.id == 1


def test_objective_rewards_and_guard_marks():
    objective = Objective("ratio", (RewardTerm("ratio"),), guards=(Guard("r2", ">=", 0.5),))
    tree = Tree.from_entries(
        [
            Entry(1, "partial", 1, None, metrics={"ratio": 2.0, "r2": 0.9}),
            Entry(2, "partial", 2, 1, metrics={"ratio": 0.5, "r2": 0.9}),
            Entry(3, "partial", 3, 1, metrics={"ratio": 1.0, "r2": 0.2}),
        ],
        objective,
    )
    assert tree.nodes[1].reward == pytest.approx(tree.nodes[2].reward)  # a ratio's reward is symmetric in log
    assert 0.0 < tree.nodes[1].reward < 1.0
    assert tree.nodes[1].guard_failed == "" and tree.nodes[1].classification == "failed"  # no bands given
    guarded = tree.nodes[3]  # the best ratio, but the guard fails: reward 0, with the guard named
    assert (guarded.reward, guarded.guard_failed, guarded.classification) == (0.0, "r2 >= 0.5", "failed")
    assert guarded.failure == "" and not guarded.is_failure  # a real (zero) result, not a failure


def test_virtual_visits_of_in_flight_nodes_change_the_chosen_parent():
    entries = [entry(1, None, 0.80), entry(2, None, 0.75)]
    tree = Tree.from_entries(entries, metric="score")
    assert choose_parent(puct(tree, C)).node_id == 1
    busy = Tree.from_entries(entries, metric="score", in_flight=[(3, 1), (4, 1)])
    scores = puct(busy, C)
    assert choose_parent(scores).node_id == 2
    assert {score.node_id for score in scores} == {1, 2}  # in-flight nodes are counted, never listed
    assert by_id(scores)[1].visits == 3 and total_visits(busy) == 4
    assert Tree.from_entries(entries, metric="score", in_flight=[(2, None)]).nodes[2].in_flight is False


def test_frozen_subtrees_are_marked_and_skipped():
    tree = Tree.from_entries([entry(1, None, 0.9), entry(2, 1, 0.95), entry(3, None, 0.1)], metric="score")
    scores = puct(tree, C, frozen={1})
    assert {score.node_id for score in scores if score.frozen} == {1, 2}
    assert choose_parent(scores).node_id == 3


def test_block_filter_keeps_lineage_and_counts_only_the_block():
    entries = [entry(i, i - 1 if i > 1 else None, 0.1 * i) for i in range(1, 7)]
    tree = Tree.from_entries(entries, metric="score", in_flight=[(7, 6)])
    members = block_members(tree, current_iteration=5, block_size=4)
    assert members == {5, 6, 7}
    scores = puct(tree, C, members)
    assert [(score.node_id, score.parent, score.visits) for score in scores] == [(6, 5, 2), (5, 4, 3)]
    assert total_visits(tree, members) == 3
    assert scores_header(3, C, (2, 5, 8)) == "=== UCB Scores (block 2, iters 5-8, N=3, c=1.414) ==="
    assert scores_header(6, C) == "=== UCB Scores (N_total=6, c=1.414) ==="


def test_unknown_parents_cycles_and_duplicates_are_reported():
    text = "".join(
        f"## Iter {i}: partial\nNode: id={i}, parent={p}\nMetrics: score=0.{i}\n\n"
        for i, p in [(1, "root"), (2, 3), (3, 2), (4, 99), (1, "root")]
    )
    tree = Tree.from_entries(parse_notebook(text).entries, metric="score")
    messages = [problem.message for problem in tree.problems]
    assert messages == [
        "node 1 defined again; keeping this entry",
        "node 4: parent 99 is not in the tree; treated as a child of the root",
        "node 2: its parent chain loops back to itself; treated as a child of the root",
    ]
    assert tree.nodes[2].parent is None and tree.nodes[3].parent == 2
    assert sorted(tree.visits().values()) == [1, 1, 1, 2]


def test_deep_chains_need_no_recursion(tmp_path):
    entries = [entry(i, i - 1 if i > 1 else None, 0.5) for i in range(1, 20_001)]
    tree = Tree.from_entries(entries, metric="score")
    assert tree.visits()[1] == 20_000
    assert len(tree.ancestors(20_000)) == 19_999
    write_scores(tmp_path / "s.txt", puct(tree, C)[:3], tree, "=== h ===")
    assert (tmp_path / "s.txt").read_text().startswith("=== h ===\n\nNode 20000: UCB=")

"""`Tree.add` / `add_in_flight`: a tree grown entry by entry equals the tree built at once;
`Tree.best`: the one definition of the best node."""

from __future__ import annotations

import math
import random

import pytest

from memory.notebook import Entry
from ucb.scores import puct
from ucb.tree import Tree


def shape(tree: Tree) -> dict:
    return {
        node.id: (
            node.parent,
            node.reward,
            node.failure,
            node.classification,
            node.rewards,
            [e.node_id for e in node.replicates],
            node.in_flight,
            sorted(tree.children(node.id)),
        )
        for node in tree.nodes.values()
    }


def random_log(rng: random.Random, count: int) -> list[Entry]:
    entries: list[Entry] = []
    originals: list[int] = []
    for node_id in range(1, count + 1):
        score = rng.choice([math.nan, rng.random(), rng.random(), rng.random()])
        status = rng.choice(["converged", "partial", "failed"])
        if originals and rng.random() < 0.25:
            parent = rng.choice(originals + [e.node_id for e in entries if e.is_replicate] or originals)
            mode = "replicate"
        else:
            parent = rng.choice(originals + [None]) if originals else None
            mode = "exploit"
            originals.append(node_id)
        entries.append(
            Entry(iteration=node_id, status=status, node_id=node_id, parent=parent, mode=mode, metrics={"s": score})
        )
    return entries


@pytest.mark.parametrize("seed", range(6))
def test_a_tree_grown_one_entry_at_a_time_is_the_tree_built_at_once(seed):
    rng = random.Random(seed)
    entries = random_log(rng, 120)
    in_flight: dict[int, int | None] = {}
    tree = Tree.from_entries([], metric="s")
    rebuilt = 0
    for index, entry in enumerate(entries):
        if rng.random() < 0.5:  # launched before it finished: in flight first
            in_flight[entry.node_id] = entry.parent
            tree.add_in_flight(entry.node_id, entry.parent)
        in_flight.pop(entry.node_id, None)
        if not tree.add(entry, metric="s"):
            rebuilt += 1
            tree = Tree.from_entries(entries[: index + 1], metric="s", in_flight=list(in_flight.items()))
        whole = Tree.from_entries(entries[: index + 1], metric="s", in_flight=list(in_flight.items()))
        assert shape(tree) == shape(whole), index
        assert tree.visits() == whole.visits()
        assert [(s.node_id, s.ucb) for s in puct(tree)] == [(s.node_id, s.ucb) for s in puct(whole)]
    assert rebuilt == 0


def test_add_refuses_what_only_a_rebuild_gets_right():
    first = Entry(iteration=1, status="partial", node_id=1, parent=None, metrics={"s": 0.5})
    tree = Tree.from_entries([first], metric="s")
    orphan = Entry(iteration=2, status="partial", node_id=2, parent=9, metrics={"s": 0.5})
    again = Entry(iteration=3, status="partial", node_id=1, parent=None, metrics={"s": 0.7})
    assert not tree.add(orphan, metric="s") and not tree.add(again, metric="s")
    assert list(tree.nodes) == [1] and tree.nodes[1].reward == 0.5


def node_entry(node_id: int, score: float, status: str, parent=None, mode="exploit") -> Entry:
    return Entry(iteration=node_id, status=status, node_id=node_id, parent=parent, mode=mode, metrics={"s": score})


def test_best_ranks_band_classes_above_failed_then_reward_and_waits_for_replicates():
    entries = [
        node_entry(1, 0.61, "failed"),  # the higher reward, but the bands class it failed
        node_entry(2, 0.39, "partial"),
        node_entry(3, 0.30, "converged"),
    ]
    tree = Tree.from_entries(entries, metric="s")
    assert tree.best.id == 2 and tree.leader.id == 2
    waiting = Tree.from_entries(entries, metric="s", replicates_wanted=1)
    assert waiting.leader.id == 2 and waiting.best is None
    replicated = entries + [node_entry(4, 0.1, "partial", parent=3, mode="replicate")]
    tree = Tree.from_entries(replicated, metric="s", replicates_wanted=1)
    assert tree.leader.id == 2 and tree.best.id == 3  # only node 3 is confirmed
    only_failed = Tree.from_entries([node_entry(1, 0.2, "failed"), node_entry(2, 0.6, "failed")], metric="s")
    assert only_failed.best.id == 2
    assert Tree.from_entries([node_entry(1, math.nan, "failed")], metric="s").best is None


def test_a_node_logged_after_its_replicate_is_left_to_a_rebuild():
    replicate = node_entry(2, 0.4, "partial", parent=1, mode="replicate")
    tree = Tree.from_entries([replicate], metric="s")
    original = node_entry(1, 0.6, "partial")
    assert not tree.add(original, metric="s")
    assert Tree.from_entries([replicate, original], metric="s").nodes[1].rewards == [0.6, 0.4]

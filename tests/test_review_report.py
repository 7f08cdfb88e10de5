"""`ucbx report`: REPORT.md and its figures, from a finished demo exploration and from the
public fixture log; the tables' numbers are checked against a direct computation from the log."""

from __future__ import annotations

import re
import statistics
from collections import defaultdict

import pytest
from conftest import FIXTURES
from review_helpers import (
    FIXTURE_LOG,
    FIXTURE_METRIC,
    demo_replicate,
    demo_rewards,
    documented_best,
    metric_rewards,
    pooled_rewards,
    single_mutation,
    table_after,
)

from agent.cli import main

IMAGE_RE = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


@pytest.fixture(scope="module")
def demo_report(finished_exploration, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert main(["report", "--workdir", str(finished_exploration), "--out", str(out)]) == 0
    return out, (out / "REPORT.md").read_text()


@pytest.fixture(scope="module")
def fixture_report(tmp_path_factory):
    if not FIXTURES.is_dir():
        pytest.skip(f"fixtures not found at {FIXTURES}")
    folder = tmp_path_factory.mktemp("fixture")
    (folder / FIXTURE_LOG).write_text((FIXTURES / FIXTURE_LOG).read_text())
    assert main(["report", "--workdir", str(folder), "--metric", FIXTURE_METRIC]) == 0
    return folder, (folder / "REPORT.md").read_text()


def test_every_embedded_figure_exists_and_is_a_png(demo_report, fixture_report):
    for out, text in (demo_report, fixture_report):
        images = IMAGE_RE.findall(text)
        assert {"report/progress.png", "report/tree.png", "report/parameters.png", "report/stability.png"} <= set(
            images
        )
        for image in images:
            assert (out / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_report_shows_the_best_node_with_its_plots_and_config(finished_exploration, demo_report):
    out, text = demo_report
    entries, rewards = demo_rewards(finished_exploration)
    pooled = pooled_rewards(entries, rewards)
    best = documented_best(finished_exploration)
    assert f"## Best node: {best}" in text
    runs = pooled[best]
    spread = (
        f" ± {statistics.stdev(runs):.3f} (standard deviation over {len(runs)} seeds)"
        if len(runs) > 1
        else " (one seed: no replicate yet)"
    )  # which node is best depends on the order runs finished in: each case is checked exactly
    assert f"- reward **{statistics.fmean(runs):.3f}**{spread}; " in text
    demo_replicate(entries, rewards)  # the demo always has a replicate (see there) ...
    replicates = sum(1 for e in entries if e.is_replicate)
    assert f"{len(entries)} runs on {len(entries) - replicates} nodes" in text  # ... pooled into its node
    assert "best_node_MLP_node_" in text and "best_node_embedding_" in text
    config_section = text.split("### Config against the base", 1)[1].split("###", 1)[0]
    assert "| key | base config |" in config_section or "No differences between base config" in config_section


def test_demo_slot_table_matches_the_log(finished_exploration, demo_report):
    _, text = demo_report
    entries, rewards = demo_rewards(finished_exploration)
    rows = {row["slot"]: row for row in table_after(text, "## Slots")}
    medians = {}
    for slot in sorted({entry.slot for entry in entries}):
        runs = [entry for entry in entries if entry.slot == slot]
        scored = [rewards[entry.node_id] for entry in runs if rewards[entry.node_id] is not None]
        row = next(row for name, row in rows.items() if name.startswith(f"slot_{slot} "))
        assert int(row["runs"]) == len(runs)
        assert int(row["failed"]) == len(runs) - len(scored)
        assert row["best reward (node)"].startswith(f"{max(scored):.3f} (")
        assert row["median reward"] == f"{statistics.median(scored):.3f}"
        medians[slot] = statistics.median(scored)
        converged = [entry for entry in runs if entry.status == "converged"]
        assert int(row["converged"]) == len(converged)
        expected = (
            f"iter {converged[0].iteration} (run {runs.index(converged[0]) + 1} of the slot)" if converged else "never"
        )
        assert row["first converged"] == expected
    best_slot = max(medians, key=medians.get)
    assert f"- best slot by median reward: **slot_{best_slot} (" in text


def one_parameter_changes(entries, rewards):
    """((parameter, up|down), slot, reward change against the parent's pooled reward) per mutation, from the log."""
    pooled = pooled_rewards(entries, rewards)
    for entry in entries:
        change = single_mutation(entry.mutation)
        if change is None or entry.parent is None or not pooled[entry.parent] or entry.mode.startswith("replicate"):
            continue
        name, old, new = change
        child = rewards[entry.node_id] or 0.0
        yield (name, _direction(old, new)), entry.slot, child - statistics.fmean(pooled[entry.parent])


def direct_effects(entries, rewards) -> dict[tuple[str, str], list[float]]:
    """(parameter, up|down) -> reward changes against the parent's pooled reward, from the log alone."""
    effects = defaultdict(list)
    for key, _, delta in one_parameter_changes(entries, rewards):
        effects[key].append(delta)
    return effects


def _direction(old, new) -> str:
    if isinstance(old, float) and isinstance(new, float):
        return "up" if new > old else "down"
    return f"={new}"


def check_effects_table(text: str, effects: dict[tuple[str, str], list[float]], slot_column: str) -> None:
    rows = [row for row in table_after(text, "## Parameter effects") if row["slot"] == slot_column]
    found = {(row["parameter"], row["direction"]): row for row in rows}
    assert set(found) == set(effects)
    for key, deltas in effects.items():
        assert int(found[key]["mutations"]) == len(deltas)
        assert int(found[key]["beat parent"]) == sum(1 for delta in deltas if delta > 0)
        assert found[key]["mean change in reward"] == f"{statistics.fmean(deltas):+.3f}"


def test_demo_parameter_effects_match_the_log(finished_exploration, demo_report):
    _, text = demo_report
    entries, rewards = demo_rewards(finished_exploration)
    effects = direct_effects(entries, rewards)
    slots_of = defaultdict(set)  # a (parameter, direction) gets an "all slots" row when it ran on several slots
    for key, slot, _ in one_parameter_changes(entries, rewards):
        slots_of[key].add(slot)
    assert effects, "the demo exploration has no one-parameter mutation"  # 8 runs on 4 slots: at least 3 of them
    rows = table_after(text, "## Parameter effects")
    totals = defaultdict(list)
    for row in rows:
        key = (row["parameter"], row["direction"])
        if row["slot"] == "all slots" or len(slots_of[key]) == 1:
            totals[key].append(row)
    assert set(totals) == set(effects)
    for key, deltas in effects.items():
        row = totals[key][0]
        assert int(row["mutations"]) == len(deltas)
        assert row["mean change in reward"] == f"{statistics.fmean(deltas):+.3f}"


def test_fixture_report_needs_only_the_log(fixture_report):
    folder, text = fixture_report
    entries, rewards = metric_rewards(folder / FIXTURE_LOG, FIXTURE_METRIC)
    best = max((node for node in rewards if rewards[node] is not None), key=lambda node: rewards[node])
    assert f"## Best node: {best}" in text
    assert "_The log has no Slot: lines: no per-slot comparison._" in text
    assert "raw metric `rate_constants_R2`" in text
    check_effects_table(text, direct_effects(entries, rewards), "no slot")


def test_fixture_progress_counts_every_run(fixture_report):
    folder, text = fixture_report
    entries, _ = metric_rewards(folder / FIXTURE_LOG, FIXTURE_METRIC)
    assert f"{len(entries)} runs on {len(entries)} nodes" in text


REPLICATE_LOG = """# hand-written log whose best node has two seed replicates

## Iter 1: partial
Node: id=1, parent=root
Config: lr=0.01, seed=0
Metrics: score=0.5
Mutation: none (baseline)

## Iter 2: converged
Node: id=2, parent=1
Config: lr=0.1, seed=0
Metrics: score=0.9
Mutation: lr: 0.01 -> 0.1

## Iter 3: converged
Node: id=3, parent=2
Mode/Strategy: replicate
Config: lr=0.1, seed=1000
Metrics: score=0.8
Mutation: replicate of node 2 (seed 0 -> 1000)

## Iter 4: partial
Node: id=4, parent=2
Mode/Strategy: replicate
Config: lr=0.1, seed=2000
Metrics: score=0.7
Mutation: replicate of node 2 (seed 0 -> 2000)
"""


def test_the_best_node_is_reported_with_the_spread_over_its_replicates(tmp_path):
    (tmp_path / "hand_analysis.md").write_text(REPLICATE_LOG)
    assert main(["report", "--workdir", str(tmp_path), "--metric", "score"]) == 0
    text = (tmp_path / "REPORT.md").read_text()
    assert "## Best node: 2\n" in text
    assert f"- reward **0.800** ± {statistics.stdev([0.9, 0.8, 0.7]):.3f} (standard deviation over 3 seeds); " in text
    assert "| metric | node 2 | node 3 (replicate) | node 4 (replicate) | mean ± sd |" in text
    assert "| score | 0.9 | 0.8 | 0.7 | 0.8 ± 0.1 |" in text
    assert "4 runs on 2 nodes" in text


HAND_LOG = """# hand-written log with slots and failures

## Iter 1: partial
Node: id=1, parent=root
Slot: slot_0 (time_step=4)
Config: lr=0.01, aug=100
Metrics: score=0.4
Mutation: none (baseline)

## Iter 2: failed
Node: id=2, parent=root
Slot: slot_1 (time_step=64)
Config: lr=0.01, aug=100
Metrics: score=nan
Mutation: none (baseline)

## Iter 3: converged
Node: id=3, parent=1
Slot: slot_0 (time_step=4)
Config: lr=0.1, aug=100
Metrics: score=0.9
Mutation: lr: 0.01 -> 0.1

## Iter 4: failed
Node: id=4, parent=3
Slot: slot_1 (time_step=64)
Config: lr=0.1, aug=1000
Metrics:
Mutation: aug: 100 -> 1000
Failure: crash: exit code 1

## Iter 5: converged
Node: id=5, parent=3
Slot: slot_0 (time_step=4)
Config: lr=0.1, aug=1000
Metrics: score=0.95
Mutation: aug: 100 -> 1000
"""


def test_a_bare_log_with_slots_and_failures(tmp_path):
    (tmp_path / "hand_analysis.md").write_text(HAND_LOG)
    assert main(["report", "--workdir", str(tmp_path), "--metric", "score"]) == 0
    text = (tmp_path / "REPORT.md").read_text()
    slots = {row["slot"]: row for row in table_after(text, "## Slots")}
    assert slots["slot_0 (time_step=4)"] == {
        "slot": "slot_0 (time_step=4)",
        "runs": "3",
        "failed": "0",
        "best reward (node)": "0.950 (5)",
        "median reward": "0.900",
        "converged": "2",
        "first converged": "iter 3 (run 2 of the slot)",
    }
    assert slots["slot_1 (time_step=64)"]["failed"] == "2"
    assert slots["slot_1 (time_step=64)"]["best reward (node)"] == "-"
    unstable = {row["node"]: row["outcome"] for row in table_after(text, "## Stability")}
    assert unstable == {"2": "diverged", "4": "crash"}
    effects = {
        (row["parameter"], row["direction"], row["slot"]): row for row in table_after(text, "## Parameter effects")
    }
    assert effects[("aug", "up", "slot_1 (time_step=64)")]["mean change in reward"] == f"{0.0 - 0.9:+.3f}"
    assert effects[("aug", "up", "slot_0 (time_step=4)")]["mean change in reward"] == f"{0.95 - 0.9:+.3f}"
    assert effects[("aug", "up", "all slots")]["mutations"] == "2"
    assert effects[("lr", "up", "slot_0 (time_step=4)")]["mean change in reward"] == f"{0.9 - 0.4:+.3f}"
    assert "![stability map](report/stability.png)" in text

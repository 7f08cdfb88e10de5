"""`ucbx tree|show|best`, from a finished demo exploration and from the public fixture log."""

from __future__ import annotations

import statistics

import yaml
from review_helpers import (
    FIXTURE_LOG,
    FIXTURE_METRIC,
    REPO,
    demo_replicate,
    demo_rewards,
    documented_best,
    metric_rewards,
    pooled_rewards,
    review,
)

from agent.spec import load_spec
from slots.config import get_path, load_config, set_path, validate_config


def best_demo_node(folder) -> int:
    return documented_best(folder)


def test_tree_in_the_terminal_and_as_a_png(capsys, finished_exploration, tmp_path):
    status, out, _ = review(capsys, "tree", "--workdir", finished_exploration)
    assert status == 0
    best = best_demo_node(finished_exploration)
    assert f"{best} ★ best" in out
    status, out, _ = review(capsys, "tree", "--workdir", finished_exploration, "--plot", tmp_path / "tree.png")
    assert status == 0 and (tmp_path / "tree.png").read_bytes()[:4] == b"\x89PNG"


def test_show_diffs_a_child_against_its_parent_from_git(capsys, finished_exploration):
    entries, _ = demo_rewards(finished_exploration)
    child = next(e for e in entries if e.parent is not None and not e.mode.startswith("replicate"))
    status, out, _ = review(capsys, "show", child.node_id, "--workdir", finished_exploration)
    assert status == 0
    assert out.startswith(f"## Iter {child.iteration}: ")
    assert f"config against node {child.parent} (git " in out
    key, _, change = child.mutation.partition(":")
    old, new = (side.strip() for side in change.split("->"))
    assert any(
        line.strip().startswith("training.") and line.strip().endswith(f"{old} -> {new}") for line in out.splitlines()
    ), out
    assert f"run folder: {finished_exploration / 'iterations' / f'node_{child.node_id:04d}'}" in out
    assert "MLP_node_p2_" in out


def test_show_names_a_replicate_and_refuses_unknown_nodes(capsys, finished_exploration):
    entries, rewards = demo_rewards(finished_exploration)
    replicate = demo_replicate(entries, rewards)
    status, _, err = review(capsys, "show", replicate.node_id, "--workdir", finished_exploration)
    assert status == 2 and f"replicate of node {replicate.parent}" in err
    status, out, _ = review(capsys, "show", replicate.parent, "--workdir", finished_exploration)
    assert status == 0 and f"replicate: Iter {replicate.iteration} (node {replicate.node_id}, seed " in out
    pooled = pooled_rewards(entries, rewards)[replicate.parent]
    assert len(pooled) >= 2
    mean, spread = statistics.fmean(pooled), statistics.stdev(pooled)
    assert f"pooled reward: {mean:.3f} ± {spread:.3f} over {len(pooled)} runs" in out
    assert review(capsys, "show", 999, "--workdir", finished_exploration)[0] == 2


def test_best_yaml_is_the_config_that_ran_and_passes_the_spec(capsys, finished_exploration):
    best = best_demo_node(finished_exploration)
    status, out, _ = review(capsys, "best", "--yaml", "--workdir", finished_exploration)
    assert status == 0
    config = yaml.safe_load(out)
    assert config == load_config(finished_exploration / "iterations" / f"node_{best:04d}" / "config.yaml")
    spec = load_spec(REPO / "configs" / "demo.yaml", {"trainer.base_config": "metabolism/tiny.yaml"})
    slot = spec.slots.values.index(get_path(config, spec.slots.key))
    base = set_path(spec.base, spec.trainer.seed_key, get_path(config, spec.trainer.seed_key))
    validate_config(config, base, spec.slots, slot, spec.space, spec.frozen)
    status, out, _ = review(capsys, "best", "--workdir", finished_exploration)
    assert status == 0 and out.startswith(f"best node {best}: reward ")


def test_best_of_a_bare_log_is_its_config_line(capsys, fixtures_dir):
    log = fixtures_dir / FIXTURE_LOG
    entries, rewards = metric_rewards(log, FIXTURE_METRIC)
    best = max((node for node in rewards if rewards[node] is not None), key=lambda node: rewards[node])
    status, out, _ = review(capsys, "best", "--yaml", "--log", log, "--metric", FIXTURE_METRIC)
    assert status == 0
    entry = next(e for e in entries if e.node_id == best)
    assert {key: str(value) for key, value in yaml.safe_load(out).items()} == {
        key: str(yaml.safe_load(text)) for key, text in entry.config.items()
    }


def test_a_folder_without_objective_is_refused(capsys, fixtures_dir):
    status, _, err = review(capsys, "report", "--log", fixtures_dir / FIXTURE_LOG)
    assert status == 2 and "give --spec SPEC or --metric NAME" in err


def test_the_cli_starts_without_the_plotting_and_statistics_libraries():
    """`ucbx status`, `step` and the daemon do not draw: matplotlib (and scipy.stats) are imported by
    the commands that need them only, so every command starts in a fraction of a second."""
    import subprocess
    import sys

    probe = "import sys, agent.cli; print(sorted(m for m in ('matplotlib', 'scipy.stats') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout

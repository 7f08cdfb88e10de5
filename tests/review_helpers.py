"""Shared helpers for the review tests: run a review command, read REPORT.md's tables,
and compute rewards straight from a log (independently of agent/review)."""

from __future__ import annotations

import math
import shutil
from collections import defaultdict
from pathlib import Path

from agent.cli import main
from agent.spec import load_spec
from memory.notebook import Entry, parse_mutation, parse_notebook

REPO = Path(__file__).resolve().parents[1]
FIXTURE_LOG = "simulation_oscillatory_rank_50_Claude_analysis.md"
FIXTURE_METRIC = "rate_constants_R2"


def review(capsys, *arguments: str) -> tuple[int, str, str]:
    """Run one ``ucbx`` review command in-process: (exit status, stdout, stderr)."""
    status = main([str(argument) for argument in arguments])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def copy_folder(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def table_after(text: str, heading: str) -> list[dict[str, str]]:
    """The first markdown table after the line starting with ``heading``, as dicts by column."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("## "):
            break
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    header, body = rows[0], rows[2:]
    return [dict(zip(header, row)) for row in body]


def demo_rewards(folder: Path) -> tuple[list[Entry], dict[int, float | None]]:
    """The demo log's entries and each run's reward by node id, from the spec's objective."""
    objective = load_spec(REPO / "configs" / "demo.yaml", {"trainer.base_config": "metabolism/tiny.yaml"}).objective
    entries = parse_notebook((folder / "demo_analysis.md").read_text()).entries
    rewards = {}
    for entry in entries:
        rewards[entry.node_id] = None if entry.failure else objective.score(entry.metrics).reward
    return entries, rewards


def demo_replicate(entries: list[Entry], rewards: dict[int, float | None]) -> Entry:
    """The demo's first seed replicate, which every finished demo exploration has.

    configs/demo.yaml asks for one replicate of the best node and every baseline of the tiny
    preset scores: the first run to finish with a reward is then the best node while its slot
    is free, so that slot's next run is its replicate, whatever order the runs finish in.
    """
    spec = load_spec(REPO / "configs" / "demo.yaml", {"trainer.base_config": "metabolism/tiny.yaml"})
    assert spec.exploration.replicates == 1
    baselines = [e for e in entries if e.mutation.startswith("none (baseline")]
    assert len(baselines) == spec.n_slots and all(rewards[e.node_id] is not None for e in baselines)
    replicates = [e for e in entries if e.is_replicate]
    assert replicates, "the demo exploration has no seed replicate"
    return replicates[0]


def metric_rewards(log: Path, metric: str) -> tuple[list[Entry], dict[int, float | None]]:
    """A bare log's entries and each run's raw metric (nan or missing: None)."""
    entries = parse_notebook(log.read_text()).entries
    rewards = {}
    for entry in entries:
        value = entry.metrics.get(metric)
        rewards[entry.node_id] = value if value is not None and math.isfinite(value) else None
    return entries, rewards


def single_mutation(text: str) -> tuple[str, object, object] | None:
    """``param: old -> new`` as the ledger reads it: numbers as floats, other values as text."""
    mutation = parse_mutation(text)
    if mutation is None:
        return None
    return mutation.param, _number_or_text(mutation.old), _number_or_text(mutation.new)


def _number_or_text(text: str) -> object:
    try:
        return float(text)
    except ValueError:
        return text.lower()


def pooled_rewards(entries: list[Entry], rewards: dict[int, float | None]) -> dict[int, list[float]]:
    """Node id -> its rewards and its seed replicates' (failures left out), from the log alone."""
    pooled = defaultdict(list)
    for entry in entries:
        target = entry.parent if entry.mode.startswith("replicate") else entry.node_id
        if rewards[entry.node_id] is not None:
            pooled[target].append(rewards[entry.node_id])
    return pooled


def documented_best(folder: Path, replicates: int = 1) -> int:
    """The best node as the README defines it, computed here from the log alone: a node with a
    pooled reward and its ``replicates`` seed replicates; a converged or partial node above a
    failed one; then the highest pooled mean (the earlier node on ties)."""
    objective = load_spec(REPO / "configs" / "demo.yaml", {"trainer.base_config": "metabolism/tiny.yaml"}).objective
    entries, rewards = demo_rewards(folder)
    pooled = pooled_rewards(entries, rewards)
    classes = {e.node_id: objective.score(e.metrics).classification for e in entries if not e.failure}
    copies = defaultdict(int)
    for entry in entries:
        if entry.mode.startswith("replicate"):
            copies[entry.parent] += 1
    confirmed = [node for node in pooled if copies[node] >= replicates and node in classes]
    assert confirmed, "the demo confirmed no node (configs/demo.yaml asks for one replicate)"
    return max(confirmed, key=lambda node: (classes[node] != "failed", sum(pooled[node]) / len(pooled[node]), -node))

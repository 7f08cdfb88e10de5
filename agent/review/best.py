"""The best node: which it is, how sure we are (replicates), what it ran and what it drew.

Owns what review shows of the best node (which node it is is `Tree.best`, ucb/tree.py:
the one definition every command and the agent use), its
runs (the node and its seed replicates), its full config, its difference from the base
config, and the trainer's latest plots in its run folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agent.review.configs import Difference, differences
from agent.review.folder import ExplorationFiles, Run
from memory.errors import UcbxError
from ucb.tree import Node

PLOTS_DIR = "tmp_training"
MAX_LINEAGE = 6  # steps shown before the middle is elided
PREFERRED_PLOTS = ("MLP_node", "embedding")  # the metabolism trainer's plots a person looks at first


@dataclass(frozen=True)
class Best:
    node: Node
    runs: list[Run]  # the node's own run first, then its replicates


def best_node(files: ExplorationFiles) -> Best:
    """The best node (`Tree.best`); UcbxError when there is none yet, naming the leader if one awaits replicates."""
    node = files.tree.best
    leader = files.tree.leader
    if node is None and leader is not None:
        raise UcbxError(
            f"{files.log_path}: no node is confirmed best yet; node {leader.id} leads (reward {leader.mean:.3f}) "
            f"and has {leader.n_replicates} of {files.tree.replicates_wanted} seed replicates (`ucbx show {leader.id}`)"
        )
    if node is None:
        raise UcbxError(f"{files.log_path}: no finished node with a reward yet")
    members = {node.id} | {entry.node_id for entry in node.replicates}
    return Best(node, [run for run in files.runs if run.entry.node_id in members])


def lineage(files: ExplorationFiles, node: Node) -> list[str]:
    """The mutations from the root to ``node``: ``node 3 (lr_node_homeo: 0.01 -> 0.03)``, ..."""
    chain = list(reversed(files.tree.ancestors(node.id))) + [node.id]
    steps = [
        f"node {node_id} ({files.tree.nodes[node_id].entry.mutation})"
        for node_id in chain
        if files.tree.nodes[node_id].entry is not None
    ]
    if len(steps) > MAX_LINEAGE:
        steps = steps[:1] + [f"… {len(steps) - MAX_LINEAGE + 1} more …"] + steps[2 - MAX_LINEAGE :]
    return steps


def base_config(files: ExplorationFiles) -> dict[str, Any] | None:
    return files.spec.base if files.spec else None


def base_differences(files: ExplorationFiles, node_id: int) -> list[Difference] | None:
    """What node ``node_id``'s config changes against the spec's base (None without both)."""
    config, base = files.config(node_id), base_config(files)
    return None if config is None or base is None else differences(base, config)


def config_yaml(files: ExplorationFiles, node_id: int) -> str:
    """The node's full config as YAML; from a bare log, its Config line (short aliases)."""
    config = files.config(node_id)
    if config is not None:
        return yaml.safe_dump(config, sort_keys=False)
    entry = files.tree.nodes[node_id].entry
    header = f"# node {node_id}: the Config line of {files.log_path.name} (short aliases; no full config here)\n"
    values = {key: yaml.safe_load(text) if text else text for key, text in entry.config.items()}
    return header + yaml.safe_dump(values, sort_keys=False)


def _natural(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def trainer_plots(run_dir: Path) -> list[Path]:
    """The latest PNG of each plot folder under ``run_dir/tmp_training``, MLP_node and embedding first."""
    root = run_dir / PLOTS_DIR
    if not root.is_dir():
        return []
    folders: dict[Path, list[Path]] = {}
    for png in root.rglob("*.png"):
        folders.setdefault(png.parent, []).append(png)
    latest = [max(pngs, key=_natural) for pngs in folders.values()]

    def rank(path: Path) -> tuple:
        preferred = next((i for i, word in enumerate(PREFERRED_PLOTS) if word in str(path)), len(PREFERRED_PLOTS))
        return preferred, str(path)

    return sorted(latest, key=rank)

"""One node, in full: its log entry, its config against its parent's, its run folder and plots.

Owns `ucbx show N`'s text. The parent's config is read as the folder's git history
recorded it (the commit that wrote node N's entry); a root node is compared with the
spec's base config.
"""

from __future__ import annotations

import yaml

from agent.review.best import base_config, trainer_plots
from agent.review.configs import diff_lines, differences
from agent.review.folder import ExplorationFiles
from memory.errors import UcbxError
from memory.notebook import format_entry


def parent_config(files: ExplorationFiles, node_id: int) -> tuple[dict | None, str]:
    """(the parent's config, what it is) as committed when node ``node_id`` was recorded."""
    node = files.tree.nodes[node_id]
    if node.parent is None:
        return base_config(files), "the base config"
    commit = files.commit_of(node.entry)
    relative = files.layout.run_config_relative(node.parent)
    text = files.git_file(relative, commit.hexsha) if commit is not None else None
    if text is not None:
        return yaml.safe_load(text), f"node {node.parent} (git {commit.hexsha[:10]})"
    return files.config(node.parent), f"node {node.parent}"


def config_section(files: ExplorationFiles, node_id: int) -> list[str]:
    config = files.config(node_id)
    before, label = parent_config(files, node_id)
    if config is None or before is None:
        return ["config diff: not available (no config for this node or its parent in the folder)"]
    rows = diff_lines(differences(before, config))
    return [f"config against {label}:"] + [f"  {row}" for row in rows or ["(no difference)"]]


def run_section(files: ExplorationFiles, node_id: int) -> list[str]:
    run_dir = files.run_dir(node_id)
    if not run_dir.is_dir():
        return ["run folder: none in this folder"]
    lines = [f"run folder: {run_dir}"]
    lines += [f"  plot: {path}" for path in trainer_plots(run_dir)]
    return lines


def show_node(files: ExplorationFiles, node_id: int) -> str:
    """Everything review knows about node ``node_id``; UcbxError when the log has no such node."""
    node = files.tree.nodes.get(node_id)
    if node is None or node.entry is None:
        replicate = next((e for e in files.entries if e.node_id == node_id), None)
        hint = f" (it is a replicate of node {replicate.parent})" if replicate is not None else ""
        raise UcbxError(f"{files.log_path}: no finished node {node_id}{hint}")
    lines = [format_entry(node.entry).rstrip()]
    lines += [
        f"replicate: Iter {e.iteration} (node {e.node_id}, seed {e.config.get('seed', '?')})" for e in node.replicates
    ]
    if node.mean is None:
        lines.append(f"failed: {node.failure}")
    elif len(node.rewards) > 1:
        lines.append(f"pooled reward: {node.mean:.3f} ± {node.spread:.3f} over {len(node.rewards)} runs")
    else:
        lines.append(f"reward: {node.mean:.3f} (one run)")
    commit = files.commit_of(node.entry)
    if commit is not None:
        lines.append(f"recorded in git commit {commit.hexsha[:10]}: {commit.message.splitlines()[0]}")
    lines += config_section(files, node_id) + run_section(files, node_id)
    children = files.tree.children(node_id)
    lines += [
        f"child {child}: {files.tree.nodes[child].entry.mutation if files.tree.nodes[child].entry else 'running'}"
        for child in children
    ]
    return "\n".join(lines) + "\n"

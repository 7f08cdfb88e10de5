"""One owner of the folder's layout, one best node everywhere, parse work that follows appends,
one Entry object per log entry in a daemon, and no class in agent/ doing several jobs."""

from __future__ import annotations

import ast
import os
import textwrap
from pathlib import Path

import pytest
from agent_helpers import SPEC, fake_spec, write_spec

from agent import daemon
from agent.cli import main
from agent.driver import Exploration
from agent.folder import ExplorationFolder
from agent.live import PlainReporter
from agent.spec import load_spec
from memory.notebook import parse_notebook

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("agent", "ucb", "memory", "slots")
LAYOUT_OWNER = REPO / "agent" / "folder.py"
# names of the exploration folder's files and folders (agent/folder.py)
LAYOUT_WORDS = ("_analysis.md", "_memory.md", "_ucb_scores.txt", "spec.yaml", "base_config.yaml", ".pending.json")
LAYOUT_NAMES = ("iterations", "node_")
MAX_CLASS_LINES = 200


def code_strings(path: Path) -> list[tuple[int, str]]:
    """String constants of a module's code (docstrings left out), with their lines."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def is_layout(text: str) -> bool:
    """A path or file name of the layout (prose that names a file, with spaces, is not one)."""
    if text in LAYOUT_NAMES or text in LAYOUT_WORDS:
        return True
    path_like = " " not in text
    return path_like and (text.endswith(LAYOUT_WORDS) or text.startswith("iterations/"))


def layout_spelled_outside_its_owner() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if path == LAYOUT_OWNER:
                continue
            for line, text in code_strings(path):
                if is_layout(text):
                    found.append(f"{path.relative_to(REPO)}:{line}: {text!r}")
    return found


def test_the_folder_layout_is_spelled_in_one_module():
    assert layout_spelled_outside_its_owner() == []


def test_the_layout_check_finds_a_path_built_elsewhere(tmp_path, monkeypatch):
    """The check above can fail: a module that builds a run folder's path by hand is found."""
    rogue = tmp_path / "agent" / "rogue.py"
    rogue.parent.mkdir()
    rogue.write_text(
        '"""Docstrings may say iterations/node_0001."""\n\ndef path(root):\n    return root / "iterations"\n'
    )
    monkeypatch.setattr(__import__(__name__), "REPO", tmp_path)
    assert layout_spelled_outside_its_owner() == ["agent/rogue.py:4: 'iterations'"]


def test_no_class_in_agent_is_over_200_lines():
    long = []
    for path in sorted((REPO / "agent").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES:
                long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1}")
    assert long == []


# ---------------------------------------------------------------- one best node

TWO_BESTS_TRAINER = """
import argparse, math
from pathlib import Path
import yaml

parser = argparse.ArgumentParser()
parser.add_argument("--config")
parser.add_argument("--run-dir")
arguments = parser.parse_args()
training = yaml.safe_load(Path(arguments.config).read_text())["training"]
step = training["homeostasis_time_step"]
# slot 4: a high reward the bands class failed (ratio 3.1); slot 16: partial with a lower reward; others nan
ratio, acc = {4: (3.1, 1.0), 16: (0.31, 0.5)}.get(step, (math.nan, 0.5))
lines = [f"avg_slope_ratio: {ratio}", f"MLP_node_slope_ratio_0: {ratio}", f"MLP_node_slope_ratio_1: {ratio}",
         f"embedding_cluster_acc: {acc}", "rate_constants_R2: 0.9"]
(Path(arguments.run_dir) / "analysis.log").write_text("\\n".join(lines) + "\\n")
"""

DEMO_OBJECTIVE = """objective:
  primary: avg_slope_ratio
  terms:
    - {metric: MLP_node_slope_ratio_0, kind: ratio, target: 1.0, weight: 1.0}
    - {metric: MLP_node_slope_ratio_1, kind: ratio, target: 1.0, weight: 1.0}
    - {metric: embedding_cluster_acc, kind: maximize, low: 0.5, high: 1.0, weight: 0.5}
  bands:
    - {label: converged, low: 0.8, high: 1.2}
    - {label: partial, low: 0.3, high: 3.0}
"""


def two_bests_folder(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "trainer.py").write_text(TWO_BESTS_TRAINER)
    text = SPEC.replace('"trainer.py"', f'"{tmp_path / "trainer.py"}"').replace("budget: 48", "budget: 6")
    objective = text[text.index("objective:") : text.index("exploration:")]
    spec_path = write_spec(tmp_path, text.replace(objective, DEMO_OBJECTIVE) + "  poll_s: 0.1\n")
    folder = tmp_path / "runs"
    assert main(["run", str(spec_path), "--workdir", str(folder)]) == 0
    # Resumed with two more runs: every slot is free, and the first pass asks them in order, so
    # slot 1 (the partial leader's own slot) gets its replicate whatever order the first runs ended in.
    assert main(["run", str(spec_path), "--workdir", str(folder), "--set", "exploration.budget=8"]) == 0
    return spec_path, folder


def test_every_command_and_the_memory_name_the_same_best_node(tmp_path, capsys):
    spec_path, folder = two_bests_folder(tmp_path)
    entries = parse_notebook((folder / "unit_analysis.md").read_text()).entries
    spec = load_spec(spec_path)
    baselines = {e.slot: e for e in entries if e.parent is None}
    failed_high, partial_low = baselines[0], baselines[1]
    high = spec.objective.score(failed_high.metrics)
    low = spec.objective.score(partial_low.metrics)
    # the folder where the two old definitions disagree: the higher reward is classed failed
    assert high.classification == "failed" and low.classification == "partial" and high.reward > low.reward
    assert any(e.is_replicate and e.parent == partial_low.node_id for e in entries)  # confirmed by its replicate
    best = partial_low.node_id

    capsys.readouterr()
    assert main(["best", str(folder)]) == 0
    assert capsys.readouterr().out.startswith(f"best node {best}: ")
    assert main(["status", str(folder)]) == 0
    assert f"best: node {best} (reward " in capsys.readouterr().out
    assert main(["tree", str(folder)]) == 0
    assert f"{best} ★ best" in capsys.readouterr().out
    assert main(["report", str(folder), "--out", str(tmp_path / "report")]) == 0
    assert f"## Best node: {best}" in (tmp_path / "report" / "REPORT.md").read_text()
    memory = (folder / "unit_memory.md").read_text()
    assert f"Best so far: node {best} (reward " in memory


# ---------------------------------------------------------------- parse work


def test_a_daemon_parses_what_is_appended_not_the_whole_log_each_pass(tmp_path):
    spec_path = fake_spec(tmp_path, sleep=0.05, budget=60)
    folder = tmp_path / "runs"
    assert main(["run", str(spec_path), "--workdir", str(folder), "--iterations", "40"]) == 0
    log = folder / "unit_analysis.md"
    size_before = log.stat().st_size
    entry_size = size_before / len(parse_notebook(log.read_text()).entries)

    spec = load_spec(spec_path)
    exploration = Exploration(spec, ExplorationFolder(folder, spec.name))
    written = daemon.run(exploration, PlainReporter(open("/dev/null", "w")), iterations=12)
    reader = exploration.reader.log
    appended = log.stat().st_size - size_before
    assert written == 12
    # each byte about once (the last entry may be read again while it could grow): not passes x log size
    assert reader.bytes_parsed <= size_before + 2 * appended + 2 * entry_size, (reader.bytes_parsed, size_before)

    text = log.read_text()
    log.write_text(text.replace("## Iter 5: ", "## Iter 5: edited ", 1))  # a hand edit in the middle
    before = reader.bytes_parsed
    report = exploration.step(launch=False, propose=False)
    assert reader.bytes_parsed - before == log.stat().st_size
    assert any("changed other than by an append" in problem for problem in report.problems)


def test_a_daemon_holds_one_entry_object_per_log_entry_the_readers_parse(tmp_path):
    """The entries a daemon wrote are held once: at the next reading its tree's nodes and replicates hold the
    log reader's parse of them, not the Entry objects the writer built (the same log entry twice)."""
    spec_path = fake_spec(tmp_path, sleep=0.05, budget=20)
    spec = load_spec(spec_path)
    exploration = Exploration(spec, ExplorationFolder(tmp_path / "runs", spec.name))
    with open(os.devnull, "w") as quiet:
        assert daemon.run(exploration, PlainReporter(quiet), iterations=12) == 12
    snapshot = exploration.snapshot()
    parsed = exploration.reader.entries()
    assert len(parsed) == 12 and any(entry.is_replicate for entry in parsed)  # nodes and replicates
    held = [node.entry for node in snapshot.tree.nodes.values() if node.entry is not None]
    held += [replicate for node in snapshot.tree.nodes.values() for replicate in node.replicates]
    assert len(held) == len(parsed)
    assert {id(entry) for entry in held} == {id(entry) for entry in parsed}
    assert all(mine is theirs for mine, theirs in zip(snapshot.entries, parsed, strict=True))
    # and it scored them as a daemon started afresh on the folder does (the writer scores the metrics
    # as the log holds them, 6 significant digits): every reward and class, node by node
    fresh = Exploration(spec, ExplorationFolder(tmp_path / "runs", spec.name)).snapshot()
    assert {n: (x.reward, x.classification) for n, x in snapshot.tree.nodes.items()} == {
        n: (x.reward, x.classification) for n, x in fresh.tree.nodes.items()
    }
    assert [r.reward for r in snapshot.records] == [r.reward for r in fresh.records]


# ---------------------------------------------------------------- the review commands' argument


@pytest.mark.parametrize("command", ["best", "tree", "check", "report"])
def test_review_commands_take_the_folder_or_the_spec_as_typed(tmp_path, capsys, monkeypatch, command):
    spec_path = fake_spec(tmp_path, sleep=0.05, budget=3)
    folder = tmp_path / "runs" / "unit"
    assert main(["run", str(spec_path), "--workdir", str(folder)]) == 0
    capsys.readouterr()
    status = main([command, str(folder)])
    err = capsys.readouterr().err
    if command == "best":  # three baselines, none replicated: no best yet, and it says why
        assert status == 2 and "no node is confirmed best yet; node " in err and "0 of 1 seed replicates" in err
    else:
        assert status in (0, 1) and "error" not in err
    # a spec names runs/<name> under the current folder
    monkeypatch.chdir(tmp_path)
    assert main([command, str(spec_path), "--set", "exploration.budget=3"]) == status
    assert capsys.readouterr().err == err.replace(f"{folder}/", "runs/unit/")


def test_a_playbook_file_beside_the_spec(tmp_path):
    playbook = textwrap.dedent(
        """
        rules:
          - name: mine
            when: {parent: [{metric: avg_slope_ratio, below: 100}]}
            mode: exploit
            prefer: [{param: batch_size, direction: up}]
        default: {mode: exploit}
        """
    )
    (tmp_path / "my_playbook.yaml").write_text(playbook)
    spec_path = write_spec(tmp_path, SPEC.replace("playbook: metabolism", "playbook: my_playbook.yaml"))
    spec = load_spec(spec_path)
    assert spec.exploration.playbook == str((tmp_path / "my_playbook.yaml").resolve())
    (tmp_path / "my_playbook.yaml").write_text(playbook.replace("mode: exploit\n    prefer", "mood: x\n    prefer"))
    with pytest.raises(Exception, match=r"my_playbook.yaml: rules\[0\]"):
        load_spec(spec_path)
    missing = write_spec(tmp_path / "b", SPEC.replace("playbook: metabolism", "playbook: nowhere.yaml"))
    with pytest.raises(Exception, match=r"exploration.playbook: no playbook 'nowhere.yaml'"):
        load_spec(missing)

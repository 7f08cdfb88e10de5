"""End to end, as a person would run it: `ucbx run configs/demo.yaml --iterations 8` with the real
metabolism trainer on CPU, then a resumed run and `ucbx step --no-launch`.

The first run is the session's `finished_exploration` (tests/conftest.py: that very command, on the
tiny preset), which the review tests read too; this test resumes a copy of it, so the eight demo
runs are trained once per session instead of twice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from agent_helpers import check_folder, scores_lines
from review_helpers import copy_folder

from memory.notebook import parse_notebook
from slots.journal import Journal

REPO = Path(__file__).resolve().parents[1]
UCBX = Path(sys.executable).parent / "ucbx"
TINY_PRESET = "metabolism/tiny.yaml"  # always the test-size preset, never a fallback to the full demo
TINY = REPO / "configs" / TINY_PRESET


def ucbx(*arguments: str) -> subprocess.CompletedProcess:
    """The installed console script, from the repository folder, as a person types it (tiny preset)."""
    options = ["--set", f"trainer.base_config={TINY_PRESET}"]
    done = subprocess.run([str(UCBX), *arguments, *options], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a folder by relative path (its git repository and journal included)."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.slow
def test_demo_exploration_end_to_end(finished_exploration, tmp_path):
    shared = snapshot(finished_exploration)  # `ucbx run configs/demo.yaml --iterations 8` (conftest.py)
    folder = copy_folder(finished_exploration, tmp_path / "demo")
    assert yaml.safe_load((folder / "base_config.yaml").read_text()) == yaml.safe_load(TINY.read_text())
    entries = check_folder(folder, "demo", 8)
    assert all(e.visual.startswith("MLP_node=") for e in entries if e.status != "failed")
    assert len(scores_lines(folder, "demo")) == sum(1 for e in entries if not e.is_replicate)
    assert all((folder / "iterations" / f"node_{e.node_id:04d}" / "config.yaml").is_file() for e in entries)

    ucbx("run", "configs/demo.yaml", "--workdir", str(folder), "--iterations", "1")
    entries = parse_notebook((folder / "demo_analysis.md").read_text()).entries
    assert [e.iteration for e in entries][-1] == 9 and len(entries) == 9
    check_folder(folder, "demo", 9)

    jobs_before = len(Journal(folder).jobs())
    ucbx("step", "configs/demo.yaml", "--workdir", str(folder), "--no-launch")
    assert len(Journal(folder).jobs()) == jobs_before
    assert len(list((folder / "slots").glob("slot_*.pending.json"))) == 4
    status = ucbx("status", "configs/demo.yaml", "--workdir", str(folder)).stdout
    assert "demo: 9/48 iterations" in status and status.count(": pending node") == 4
    assert snapshot(finished_exploration) == shared  # the other tests' exploration was left as it was

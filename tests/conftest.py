"""Shared test fixtures: repository paths and the public implementation's fixture files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures" / "metabolismgraph"


@pytest.fixture
def fixtures_dir() -> Path:
    """../shared/fixtures/metabolismgraph (CI clones the repository beside ../shared)."""
    if not FIXTURES.is_dir():
        pytest.skip(f"fixtures not found at {FIXTURES}")
    return FIXTURES


@pytest.fixture(scope="session")
def finished_exploration(tmp_path_factory) -> Path:
    """A real finished demo exploration, made once per test session (about a minute on CPU).

    `ucbx run configs/demo.yaml --iterations 8` with the trainer switched to the tiny
    preset, in a temporary folder; tests must not change it (copy it first). The review
    tests read it, and tests/test_agent_e2e.py checks it and resumes a copy of it.
    """
    folder = tmp_path_factory.mktemp("finished") / "demo"
    ucbx = Path(sys.executable).parent / "ucbx"
    done = subprocess.run(
        [
            str(ucbx),
            "run",
            "configs/demo.yaml",
            "--workdir",
            str(folder),
            "--iterations",
            "8",
            "--set",
            "trainer.base_config=metabolism/tiny.yaml",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return folder

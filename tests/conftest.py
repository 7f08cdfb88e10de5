"""Shared test fixtures: repository paths and the public implementation's fixture files."""

from __future__ import annotations

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

"""Smoke run of benchmarks/: every searcher, one synthetic task, one seed, a tiny budget.

Not a timed test: it only checks that the harness, the searchers, the utilisation and
overhead measurements and the figures still run end to end (`python -m benchmarks smoke`).
Optuna and cmaes are an optional extra (`bench`); without them the Optuna searchers are skipped, with the reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.harness import run_campaign
from benchmarks.searchers import OPTUNA_SEARCHERS, SEARCHERS, optuna_missing
from benchmarks.tasks import make_task

REPO = Path(__file__).resolve().parents[1]


def test_smoke_writes_every_result_and_figure(tmp_path):
    results, figures = tmp_path / "results", tmp_path / "figures"
    subprocess.run(
        [sys.executable, "-m", "benchmarks", "smoke", "--results", str(results), "--figures", str(figures)],
        cwd=REPO,
        check=True,
        timeout=300,
    )
    reason = optuna_missing()
    if reason:
        print(f"Optuna searchers skipped: {reason}")
    campaigns = json.loads((results / "search_smoke.json").read_text())
    expected = set(SEARCHERS) - (set(OPTUNA_SEARCHERS) if reason else set())
    assert {c["searcher"] for c in campaigns} == expected
    assert all(len(c["best_so_far"]) == 8 for c in campaigns)
    utilisation = json.loads((results / "utilisation.json").read_text())
    assert [u["loop"] for u in utilisation] == ["synchronous batch", "asynchronous"]
    assert utilisation[1]["jobs"] > utilisation[0]["jobs"]
    seconds = json.loads((results / "overhead.json").read_text())["decisions"][0]["seconds"]
    assert seconds["decision"] > 0 and seconds["pass"] > 0
    assert (results / "search_smoke.png").is_file()  # a search run's figure stays beside its results
    assert {p.name for p in figures.iterdir()} == {"utilisation.png", "overhead.png"}


def test_same_seed_same_campaign(tmp_path):
    """Fixed seeds per searcher: a campaign is reproducible."""
    task = make_task("synthetic-noisy", 3, tmp_path)
    for searcher in ("ucbx", "random", "public-rule", "grid"):
        first, second = (run_campaign(task, searcher, 3, 10) for _ in range(2))
        assert first.rewards == second.rewards, searcher


def test_tpe_searcher_runs(tmp_path):
    """Optuna's TPE through ask/tell; skipped (with the reason) where the `bench` extra is not installed."""
    reason = optuna_missing()
    if reason:
        pytest.skip(reason)
    campaign = run_campaign(make_task("synthetic-strategy", 0, tmp_path), "tpe", 0, 8)
    assert len(campaign.best_so_far) == 8

"""The demo specs under `ucbx run ... --iterations 8`, at test size (the tiny trainer presets).

The real demo presets take minutes on two CPU cores (see the README); here each spec runs
with ``--set trainer.base_config=<tiny preset>`` so the whole loop is exercised quickly.
Every run must have trained to its end and been scored: a crash, a timeout or a run that
wrote no metrics fails the test (a config that diverges is an outcome, not an error).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from agent.spec import load_spec
from memory.notebook import parse_notebook
from slots.config import get_path, load_config

REPO = Path(__file__).resolve().parents[1]
UCBX = Path(sys.executable).parent / "ucbx"

# spec: (tiny preset, the metric that counts the training done, the config key it must reach, Visual line start)
DEMOS = {
    "causal_demo": ("causal/tiny.yaml", "epochs_run", "training.epochs", "Graph="),
    "gflownet_demo": ("gflownet/tiny.yaml", "steps_run", "training.n_steps", "Loss="),
    "command_demo": ("", "epoch", "train.epochs", "none (the spec names no trainer.describe)"),
}
OUTCOMES = {"diverged"}  # the only Failure kind a demo run may have: the config's doing, not the trainer's


@pytest.mark.slow
@pytest.mark.parametrize("name", list(DEMOS))
def test_demo_spec_runs_eight_iterations(tmp_path, name):
    tiny, done_metric, done_key, visual = DEMOS[name]
    overrides = {"trainer.base_config": tiny} if tiny else {}
    overrides["exploration.budget"] = 8  # the eight iterations are the whole campaign: it ends in them
    options = [option for key, value in overrides.items() for option in ("--set", f"{key}={value}")]
    folder = tmp_path / name
    done = subprocess.run(
        [str(UCBX), "run", f"configs/{name}.yaml", "--workdir", str(folder), "--iterations", "8", *options],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    spec = load_spec(REPO / "configs" / f"{name}.yaml", overrides)
    parse = parse_notebook((folder / f"{name}_analysis.md").read_text())
    entries = parse.entries
    assert len(entries) == 8 and not parse.problems
    errors = [f"iter {e.iteration}: {e.failure}" for e in entries if e.failure.split(":")[0] not in OUTCOMES | {""}]
    assert not errors, errors
    for entry in (e for e in entries if not e.failure):
        where = f"iter {entry.iteration} (node {entry.node_id})"
        config = load_config(folder / "iterations" / f"node_{entry.node_id:04d}" / "config.yaml")
        assert entry.metrics.get(done_metric) == get_path(config, done_key), (where, entry.metrics)
        assert math.isfinite(entry.metrics[spec.objective.primary]), where
        score = spec.objective.score(entry.metrics)
        assert score.reward is not None and entry.status == score.classification, (where, score, entry.status)
        assert entry.visual.startswith(visual), (where, entry.visual)
    baselines = [e for e in entries if e.mutation.startswith("none (baseline")]
    assert sorted(e.slot for e in baselines) == list(range(spec.n_slots))
    assert not any(e.failure for e in baselines), [e.failure for e in baselines]  # the base config trains
    # exploration.replicates is 1, every baseline scores and a budget of 8 on 4 slots is in its last round
    # from the fifth launch, so the first run to finish with a reward is the leader when its slot frees,
    # and that slot's next run is its replicate (whatever the timing)
    assert spec.exploration.replicates == 1 and any(e.is_replicate for e in entries)
    assert any(e.parent is not None and not e.is_replicate for e in entries)  # and it branched from results

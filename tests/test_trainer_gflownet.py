"""The GFlowNet trainer: real Trajectory Balance training at test size, its metrics, seed 000's failure."""

from __future__ import annotations

import inspect
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from memory.analysis_log import read_metrics
from slots.outcome import classify_run
from trainers.common import run_main
from trainers.gflownet.describe import describe_visual
from trainers.gflownet.reward import decode, make_reward
from trainers.gflownet.train import run, train

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "gflownet" / "tiny.yaml"
PROMISED = (
    "loss",
    "log_z",
    "mean_log_pf",
    "mean_reward",
    "max_reward",
    "diversity",
    "valid_fraction",
    "modes_found",
    "first_nan_step",
    "diverged",
)


def tiny_config(tmp_path: Path, model: dict | None = None, **training) -> Path:
    """The tiny preset with overrides, in a file of its own."""
    config = yaml.safe_load(TINY.read_text())
    config["training"].update(training)
    config["model"].update(model or {})
    path = tmp_path / f"config_{len(list(tmp_path.glob('config_*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_tiny_run_learns_and_writes_every_promised_metric(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "trainers.gflownet", "--config", str(TINY), "--run-dir", str(tmp_path / "run")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    metrics = read_metrics(tmp_path / "run" / "analysis.log")
    assert set(PROMISED) <= set(metrics)
    assert metrics["diverged"] == 0 and metrics["first_nan_step"] == 0
    assert all(math.isfinite(value) for value in metrics.values())
    assert 0 < metrics["mean_reward"] <= metrics["max_reward"] <= 1 and 0 <= metrics["diversity"] <= 1
    visual = json.loads((tmp_path / "run" / "visual.json").read_text())
    losses = visual["curves"]["loss"]
    assert len(losses) == metrics["steps_run"] == 60
    assert sum(losses[-10:]) < sum(losses[:10]) / 2  # Trajectory Balance is being minimised
    assert visual["curves"]["log_z"][-1] > visual["curves"]["log_z"][0]
    assert (tmp_path / "run" / "tmp_training" / "training.png").is_file()
    assert classify_run(tmp_path / "run", 0, None).status == "done"
    assert describe_visual(visual).startswith("Loss=falling: ")


def test_same_seed_gives_identical_metrics(tmp_path):
    config = tiny_config(tmp_path, n_steps=8)
    first = run(config, tmp_path / "a")
    assert run(config, tmp_path / "b") == first
    assert run(tiny_config(tmp_path, n_steps=8, seed=1), tmp_path / "c") != first


@pytest.mark.parametrize("learning_rate", [1e-8, 1e-2])
def test_unconstrained_policy_head_is_finite_at_step_1_and_nan_from_step_2(tmp_path, learning_rate):
    """Seed 000: finite first loss, nan from the second step at any learning rate; recorded as diverged."""
    run_dir = tmp_path / "run"
    run(tiny_config(tmp_path, {"policy_head": "unconstrained"}, n_steps=10, learning_rate=learning_rate), run_dir)
    losses = json.loads((run_dir / "visual.json").read_text())["curves"]["loss"]
    assert losses[0] is not None and math.isfinite(losses[0]) and losses[1] is None  # null = nan in JSON
    metrics = read_metrics(run_dir / "analysis.log")
    assert metrics["diverged"] == 1 and metrics["first_nan_step"] == 2 and math.isnan(metrics["mean_reward"])
    state = classify_run(run_dir, 0, None)
    assert (state.status, state.failure_kind) == ("failed", "diverged")
    visual = json.loads((run_dir / "visual.json").read_text())
    assert describe_visual(visual) == "Loss=diverged: finite for 1 step(s), nan from step 2"


def test_constrained_head_fixes_it(tmp_path):
    metrics = run(tiny_config(tmp_path, n_steps=10, learning_rate=1e-2), tmp_path / "run")
    assert metrics["first_nan_step"] == 0 and math.isfinite(metrics["loss"])


def test_reward_is_known_and_its_motifs_stay_out_of_training():
    assert list(inspect.signature(train).parameters) == ["score", "config", "device", "progress"]
    score, modes = make_reward({"seed": 0, "n_motifs": 2, "motif_length": 3, "floor": 0.01}, 3, torch.device("cpu"))
    motif = modes.motifs[0]
    tokens = torch.stack([torch.cat([motif, motif[:1]]), torch.cat([motif, motif[:1]])])
    rewards = score(tokens, torch.tensor([4, 2]))
    assert rewards[0] == pytest.approx(1.0) and rewards[1] == pytest.approx(0.01)  # whole motif; too short
    assert len(decode(tokens, torch.tensor([4, 2]))[1]) == 2


@pytest.mark.parametrize(
    "text, key",
    [
        ("training: {learning_rat: 0.1}\n", "training.learning_rat"),
        ("model: {policy_head: linear}\n", "model.policy_head"),
        ("generation: {max_length: 2}\n", "generation.max_length"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(tmp_path, capsys, text, key):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    assert run_main(run, "gflownet", ["--config", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    stderr = capsys.readouterr().err
    assert key in stderr and len(stderr.strip().splitlines()) == 1

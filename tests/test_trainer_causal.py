"""The causal trainer: real training at test size, its metrics, its failure modes, its contract."""

from __future__ import annotations

import inspect
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from agent.spec import load_spec
from memory.analysis_log import read_metrics
from slots.outcome import classify_run
from trainers.causal.config import load
from trainers.causal.data import Observations, make_sem
from trainers.causal.describe import describe_visual
from trainers.causal.evaluate import score_graph, structural_hamming_distance
from trainers.causal.train import final_metrics, run, train
from trainers.common import run_main

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "causal" / "tiny.yaml"
PROMISED = (
    "val_f1",
    "val_shd",
    "edge_count",
    "grad_clip_ratio",
    "logit_std",
    "best_threshold",
    "train_loss",
    "val_loss",
    "loss_recon",
    "loss_sparse",
    "loss_acyclic",
    "loss_disen",
    "learning_rate",
    "diverged",
)


def tiny_config(tmp_path: Path, **training) -> Path:
    """The tiny preset with ``training`` overrides, in a file of its own."""
    config = yaml.safe_load(TINY.read_text())
    config["training"].update(training)
    path = tmp_path / f"config_{len(list(tmp_path.glob('config_*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def visual_line(run_dir: Path) -> str:
    return describe_visual(json.loads((run_dir / "visual.json").read_text()))


def trainer(config: Path, run_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trainers.causal", "--config", str(config), "--run-dir", str(run_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_tiny_run_writes_every_promised_metric(tmp_path):
    done = trainer(TINY, tmp_path / "run")
    assert done.returncode == 0, done.stderr
    metrics = read_metrics(tmp_path / "run" / "analysis.log")
    assert set(PROMISED) <= set(metrics)
    assert metrics["diverged"] == 0 and all(math.isfinite(v) for v in metrics.values())
    assert metrics["val_f1"] > 0.3 and metrics["edge_count"] > 0 and metrics["grad_clip_ratio"] < 0.5
    visual = json.loads((tmp_path / "run" / "visual.json").read_text())
    assert len(visual["curves"]["val_f1"]) == metrics["epochs_run"] and len(visual["thresholds"]) == 21
    assert (tmp_path / "run" / "tmp_training" / "training.png").is_file()
    assert classify_run(tmp_path / "run", 0, None).status == "done"
    assert describe_visual(visual).startswith("Graph=learning: ")


def test_same_seed_gives_identical_metrics(tmp_path):
    config = tiny_config(tmp_path, epochs=2)
    first = run(config, tmp_path / "a")
    assert run(config, tmp_path / "b") == first
    assert run(tiny_config(tmp_path, epochs=2, seed=1), tmp_path / "c") != first


def test_raw_scale_inputs_explode_gradients_and_clip_every_step(tmp_path):
    """Seed 001: features on 0..2775 scales -> huge gradients, 100% clipping; standardising fixes it."""
    objective = load_spec(REPO / "configs" / "causal_demo.yaml").objective
    raw = run(tiny_config(tmp_path, standardize_inputs=False, loss_reduction="sum"), tmp_path / "raw")
    assert raw["grad_clip_ratio"] == 1.0 and raw["grad_norm"] > 1e4 and raw["input_max"] > 1000
    assert raw["logit_std"] < 0.1  # the gates barely separate
    assert visual_line(tmp_path / "raw").startswith("Graph=undecided: ")
    assert "Gradients=exploding: clipped 100% -> 100%" in visual_line(tmp_path / "raw")
    assert raw["val_f1"] < 0.2 and objective.score(raw).classification == "failed"  # chance level
    fixed = run(tiny_config(tmp_path), tmp_path / "fixed")
    assert fixed["grad_clip_ratio"] < 0.5 and fixed["grad_norm"] < 1.0
    assert objective.score(fixed).reward > objective.score(raw).reward


def test_strong_acyclicity_penalty_collapses_to_no_edges(tmp_path):
    """Seed 002: penalties too strong -> edge_count 0, logit std ~ 0; the guard marks it failed."""
    collapsed = run(tiny_config(tmp_path, lambda_acyclic=1.0), tmp_path / "collapsed")
    assert collapsed["edge_count"] == 0 and collapsed["logit_std"] < 0.01
    assert visual_line(tmp_path / "collapsed").startswith("Graph=collapsed: 0 edges")
    assert read_metrics(tmp_path / "collapsed" / "analysis.log")["diverged"] == 0  # a result, not a blow-up
    score = load_spec(REPO / "configs" / "causal_demo.yaml").objective.score(collapsed)
    assert score.guard_failed == "edge_count >= 1" and score.classification == "failed"


def test_training_never_sees_the_true_graph():
    assert list(inspect.signature(train).parameters) == ["observations", "config", "device", "progress"]
    assert [f for f in Observations.__dataclass_fields__] == ["train", "val"]
    observations, truth = make_sem(load(TINY)["data"])
    assert truth.adjacency.sum() == 13
    assert observations.train.max() > 1000 and observations.train.min() >= 0  # raw sensor-like scales


def test_graph_score_counts_reversals_once():
    true = np.zeros((3, 3))
    true[0, 1] = true[1, 2] = 1
    assert score_graph(true, true).f1 == 1.0 and score_graph(true, true).shd == 0
    assert structural_hamming_distance(true.T.copy(), true) == 2


@pytest.mark.parametrize(
    "text, key",
    [
        ("training: {learning_rat_max: 0.1}\n", "training.learning_rat_max"),
        ("training: {lr_schedule: cosine}\n", "training.lr_schedule"),
        ("model: {hidden_dim: 3.5}\n", "model.hidden_dim"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(tmp_path, capsys, text, key):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    assert run_main(run, "causal", ["--config", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    stderr = capsys.readouterr().err
    assert key in stderr and len(stderr.strip().splitlines()) == 1


def test_non_finite_data_is_a_divergence_with_nan_metrics():
    config = load(TINY)
    broken = np.full((64, 13), np.nan)
    history = train(Observations(train=broken, val=broken[:8]), config, torch.device("cpu"))
    assert history.diverged and not history.gates
    metrics = final_metrics(history, np.eye(13), 1.0)
    assert math.isnan(metrics["val_f1"]) and math.isnan(metrics["edge_count"])

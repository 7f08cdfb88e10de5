"""trainers/metabolism with real training at the tiny preset (Phase 1 trained once per session)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from memory.analysis_log import read_metrics
from trainers.common import run_main
from trainers.metabolism.config import load_config
from trainers.metabolism.model import MetabolicModel
from trainers.metabolism.phase1 import load_or_train_phase1, phase1_checkpoint_path
from trainers.metabolism.phase2 import train_phase2
from trainers.metabolism.simulator import data_folder, ensure_data, load_observations
from trainers.metabolism.train import run

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "metabolism" / "tiny.yaml"
TIMING_METRICS = ("training_time_min", "phase1_time_min", "phase2_time_min", "phase1_cached")


def write_config(folder: Path, cache_dir: Path, **training) -> Path:
    config = yaml.safe_load(TINY.read_text())
    config["training"].update({"cache_dir": str(cache_dir), **training})
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One data set and one Phase 1 for the whole session (the first run trains it)."""
    folder = tmp_path_factory.mktemp("metabolism_cache")
    run_dir = tmp_path_factory.mktemp("first_run")
    run(write_config(run_dir, folder), run_dir / "run")
    return folder


def train(tmp_path: Path, cache_dir: Path, name: str = "run", **training) -> dict[str, float]:
    folder = tmp_path / name
    folder.mkdir()
    run(write_config(folder, cache_dir, **training), folder / "run")
    return read_metrics(folder / "run" / "analysis.log")


def without_timing(metrics: dict[str, float]) -> dict[str, float]:
    return {name: value for name, value in metrics.items() if name not in TIMING_METRICS}


def test_run_writes_log_plots_and_visual(tmp_path, cache_dir):
    metrics = train(tmp_path, cache_dir)
    run_dir = tmp_path / "run" / "run"
    for name in (
        "phase2_loss",
        "phase2_node_magnitude",
        "MLP_node_slope_ratio_0",
        "MLP_node_offset_ratio_1",
        "MLP_node_gt_slope_1",
        "avg_slope_ratio",
        "embedding_cluster_acc",
        "embedding_n_clusters",
        "embedding_silhouette",
        "rate_constants_R2",
        "training_time_min",
        "diverged",
        "MLP_node_slope_ceiling_0",
        "MLP_node_offset_ceiling_1",
        "MLP_node_slope_ceiling_ratio_1",
        "MLP_node_slope_vs_ceiling_1",
        "worst_slope_ratio",
        "worst_slope_vs_ceiling",
        "embedding_cluster_acc_strict",
        "embedding_ari",
        "phase1_rate_constants_R2",
        "rate_constants_R2_drop",
    ):
        assert name in metrics and np.isfinite(metrics[name]), name
    ratios = [metrics[f"MLP_node_slope_ratio_{t}"] for t in range(2)]
    assert metrics["worst_slope_ratio"] in ratios
    for t in range(2):
        vs_ceiling = metrics[f"MLP_node_slope_{t}"] / metrics[f"MLP_node_slope_ceiling_{t}"]
        assert metrics[f"MLP_node_slope_vs_ceiling_{t}"] == pytest.approx(vs_ceiling, rel=1e-4)
    assert metrics["rate_constants_R2_drop"] == 0.0  # Phase 1 frozen: nothing to drop
    assert metrics["diverged"] == 0 and metrics["phase1_cached"] == 1
    assert "diverged: 0\n" in (run_dir / "analysis.log").read_text()
    for plot in (
        "function/MLP_node/MLP_node_p2_100.png",
        "rate_constants/comparison_p2_100.png",
        "embedding/embedding_p2_100.png",
        "loss.png",
    ):
        assert (run_dir / "tmp_training" / plot).stat().st_size > 0
    assert (run_dir / "model.pt").exists()
    visual = json.loads((run_dir / "visual.json").read_text())
    assert visual["worst_slope_ratio"] == pytest.approx(metrics["worst_slope_ratio"], rel=1e-4)
    assert visual["embedding"]["accuracy_strict"] == pytest.approx(metrics["embedding_cluster_acc_strict"])
    assert visual["mlp_node"]["per_type"][1]["slope_ceiling"] == pytest.approx(metrics["MLP_node_slope_ceiling_1"])


def test_phase1_reaches_useful_rate_constants(tmp_path, cache_dir):
    assert train(tmp_path, cache_dir)["rate_constants_R2"] > 0.85


def test_same_seed_same_metrics(tmp_path, cache_dir):
    first = train(tmp_path, cache_dir, "first", seed=3)
    second = train(tmp_path, cache_dir, "second", seed=3)
    other = train(tmp_path, cache_dir, "other", seed=4)
    assert without_timing(first) == without_timing(second)
    assert without_timing(first) != without_timing(other)


def test_phase1_is_frozen_in_phase2(tmp_path, cache_dir):
    config = load_config(write_config(tmp_path, cache_dir, learning_rate_node_homeostasis=0.05))
    observations = load_observations(ensure_data(cache_dir, config["simulation"]))
    concentrations = torch.as_tensor(observations.concentrations)
    model = MetabolicModel(observations, config["graph_model"], -1.5)
    load_or_train_phase1(model, observations, concentrations, config, cache_dir, print)
    before = [parameter.detach().clone() for parameter in model.reaction_parameters()]
    node_before = [parameter.detach().clone() for parameter in model.homeostasis_parameters()]
    train_phase2(model, concentrations, observations.delta_t, config["training"], print)
    after = model.reaction_parameters()
    assert all(torch.equal(old, new) for old, new in zip(before, after))
    assert not all(torch.equal(old, new) for old, new in zip(node_before, model.homeostasis_parameters()))
    # and the reported metric: identical between a trained and an untrained Phase 2
    trained = train(tmp_path, cache_dir, "trained", learning_rate_node_homeostasis=0.05)
    untrained = train(tmp_path, cache_dir, "untrained", homeostasis_training=False)
    assert trained["rate_constants_R2"] == untrained["rate_constants_R2"]


@pytest.mark.parametrize(
    "training",
    [
        {"phase2_strategy": "residual+contrastive"},
        {"phase2_strategy": "rollout+joint+anchor"},
        {"phase2_strategy": "residual+joint+contrastive"},
        {"phase2_strategy": "rollout+contrastive", "phase1_train_node": True},
    ],
    ids=["residual+contrastive", "rollout+joint+anchor", "residual+joint+contrastive", "phase1_train_node"],
)
def test_label_permutation_changes_no_trained_parameter(tmp_path, cache_dir, training):
    """Types, lambdas and baselines permuted in the ground-truth file: every trained tensor identical.

    With phase1_train_node each cache trains its own Phase 1 (the option has its own key),
    so Phase 1 is covered too.
    """
    permuted_cache = tmp_path / "permuted_cache"
    shutil.copytree(cache_dir, permuted_cache)
    config = load_config(TINY)
    truth_file = data_folder(permuted_cache, config["simulation"]) / "ground_truth.npz"
    with np.load(truth_file) as stored:
        truth = dict(stored)
    original_types = truth["types"].copy()
    truth["types"] = np.random.default_rng(0).permutation(truth["types"])
    truth["lambdas"], truth["baselines"] = truth["lambdas"][::-1].copy(), truth["baselines"][::-1].copy()
    assert not np.array_equal(original_types, truth["types"])
    np.savez(truth_file, **truth)
    states = []
    for name, folder in (("original", cache_dir), ("permuted", permuted_cache)):
        train(tmp_path, folder, name, data_augmentation_loop=40, **training)
        states.append(torch.load(tmp_path / name / "run" / "model.pt", weights_only=False)["model"])
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][key], states[1][key]) for key in states[0])


def test_evaluating_at_the_progress_checkpoints_changes_no_trained_parameter(tmp_path, cache_dir):
    """The checkpoints read the model and the ground truth between batches: the run trains exactly as without."""
    states, checkpoint_lines = [], []
    for name, checkpoints in (("none", 0), ("five", 5)):
        train(tmp_path, cache_dir, name, data_augmentation_loop=40, progress_checkpoints=checkpoints)
        run_dir = tmp_path / name / "run"
        states.append(torch.load(run_dir / "model.pt", weights_only=False)["model"])
        written = (run_dir / "progress.jsonl").read_text().splitlines()
        checkpoint_lines.append(sum("worst_slope_ratio" in line for line in written))
    assert checkpoint_lines == [0, 5]
    assert all(torch.equal(states[0][key], states[1][key]) for key in states[0])


def phase1_model(tmp_path: Path, cache_dir: Path, **training):
    config = load_config(write_config(tmp_path, cache_dir, **training))
    observations = load_observations(ensure_data(cache_dir, config["simulation"]))
    concentrations = torch.as_tensor(observations.concentrations)
    model = MetabolicModel(observations, config["graph_model"], -1.5)
    load_or_train_phase1(model, observations, concentrations, config, cache_dir, print)
    return config, model, observations, concentrations


def test_phase1_train_node_has_its_own_cache_and_phase2_starts_from_its_node(tmp_path, cache_dir):
    plain = load_config(write_config(tmp_path, cache_dir))
    with_node = load_config(write_config(tmp_path, cache_dir, phase1_train_node=True))
    assert phase1_checkpoint_path(cache_dir, plain) != phase1_checkpoint_path(cache_dir, with_node)
    faster = load_config(write_config(tmp_path, cache_dir, phase1_train_node=True, learning_rate_node=0.01))
    assert phase1_checkpoint_path(cache_dir, with_node) != phase1_checkpoint_path(cache_dir, faster)
    # without the option, learning_rate_node does not split the cache (earlier caches stay valid)
    ignored = load_config(write_config(tmp_path, cache_dir, learning_rate_node=0.01))
    assert phase1_checkpoint_path(cache_dir, plain) == phase1_checkpoint_path(cache_dir, ignored)

    _, first, _, _ = phase1_model(tmp_path, cache_dir, phase1_train_node=True, seed=1)
    checkpoint = torch.load(phase1_checkpoint_path(cache_dir, with_node), weights_only=False)
    assert any(name.startswith("node.") for name in checkpoint["reaction_state"]) and (
        "embeddings" in checkpoint["reaction_state"]
    )
    _, second, _, _ = phase1_model(tmp_path, cache_dir, phase1_train_node=True, seed=2)  # loads the cache
    fresh = MetabolicModel(load_observations(ensure_data(cache_dir, plain["simulation"])), plain["graph_model"], -1.5)
    for name, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[name]), name
    trained_node = first.node.net[-1].weight
    assert not torch.equal(trained_node, fresh.node.net[-1].weight)
    assert trained_node.abs().max() > 10 * fresh.node.net[-1].weight.abs().max()  # it learned, not just re-seeded
    # the same MLP_node is where Phase 2 starts: a run without Phase 2 reports Phase 1's node function
    metrics = train(tmp_path, cache_dir, "phase1_only", phase1_train_node=True, homeostasis_training=False)
    assert metrics["phase2_node_magnitude"] > 1e-3


def test_joint_refinement_moves_log_k_and_anchor_holds_it_closer(tmp_path, cache_dir):
    drift = {}
    for strategy in ("rollout+joint", "rollout+joint+anchor"):
        config, model, observations, concentrations = phase1_model(
            tmp_path,
            cache_dir,
            phase2_strategy=strategy,
            anchor_weight=1.0e3,
            joint_lr_factor=0.1,
            data_augmentation_loop=60,
        )
        log_k, substrate = model.log_k.detach().clone(), [p.detach().clone() for p in model.substrate.parameters()]
        train_phase2(model, concentrations, observations.delta_t, config["training"], print)
        assert all(torch.equal(old, new) for old, new in zip(substrate, model.substrate.parameters()))
        drift[strategy] = torch.mean((model.log_k.detach() - log_k) ** 2).item()
    assert drift["rollout+joint"] > 0.0
    assert drift["rollout+joint+anchor"] < 0.5 * drift["rollout+joint"]
    metrics = train(tmp_path, cache_dir, "joint", phase2_strategy="residual+joint", joint_lr_factor=1.0)
    assert metrics["rate_constants_R2_drop"] == pytest.approx(
        metrics["phase1_rate_constants_R2"] - metrics["rate_constants_R2"], abs=1e-5
    )  # analysis.log keeps 6 significant digits
    assert metrics["rate_constants_R2"] != metrics["phase1_rate_constants_R2"]


def test_residual_strategy_learns_type_dependent_node_function(tmp_path, cache_dir):
    metrics = train(
        tmp_path,
        cache_dir,
        phase2_strategy="residual",
        learning_rate_node_homeostasis=0.003,
        learning_rate_embedding_homeostasis=0.03,
        data_augmentation_loop=300,
    )
    assert metrics["phase2_node_magnitude"] > 1e-3
    assert metrics["MLP_node_slope_0"] < 0 and metrics["MLP_node_slope_1"] < 0
    assert metrics["MLP_node_slope_1"] < metrics["MLP_node_slope_0"]  # type 1 regulates harder
    assert metrics["MLP_node_offset_1"] > metrics["MLP_node_offset_0"]


@pytest.mark.parametrize(
    "strategy",
    [
        "amplification",
        "contrastive",
        "curriculum",
        "lr_warmup",
        "multiscale",
        "separate_losses",
        "residual+grad_accumulation+lr_warmup",
    ],
)
def test_every_strategy_trains(tmp_path, cache_dir, strategy):
    metrics = train(
        tmp_path,
        cache_dir,
        phase2_strategy=strategy,
        data_augmentation_loop=16,
        homeostasis_time_step=8,
        amplification_decay=True,
    )
    assert metrics["diverged"] == 0 and np.isfinite(metrics["avg_slope_ratio"])


def test_absurd_learning_rate_diverges_and_exits_zero(tmp_path, cache_dir):
    config = write_config(tmp_path, cache_dir, learning_rate_node_homeostasis=1.0e6)
    result = subprocess.run(
        [sys.executable, "-m", "trainers.metabolism", "--config", str(config), "--run-dir", str(tmp_path / "run")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    metrics = read_metrics(tmp_path / "run" / "analysis.log")
    assert metrics["diverged"] == 1
    for name in ("avg_slope_ratio", "MLP_node_slope_ratio_0", "phase2_loss", "embedding_cluster_acc"):
        assert np.isnan(metrics[name])
    assert metrics["rate_constants_R2"] > 0.85  # Phase 1 is untouched by the blow-up


def test_missing_phase1_cache_is_trained_and_said(tmp_path, capsys):
    config = write_config(tmp_path, tmp_path / "empty_cache", data_augmentation_loop=2, phase1_iterations=50)
    assert run_main(run, "metabolism", ["--config", str(config), "--run-dir", str(tmp_path / "run")]) == 0
    assert "no cached Phase 1" in capsys.readouterr().out
    assert list((tmp_path / "empty_cache").glob("phase1_*.pt"))


def test_bad_config_is_one_line_and_exit_2(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("training:\n  learning_rate_node_homeostasis_typo: 0.1\n")
    assert run_main(run, "metabolism", ["--config", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "training.learning_rate_node_homeostasis_typo" in error

"""Issue 17's evaluation metrics on ground truth: the identifiable ceiling, worst_slope_ratio, noise-honest clustering.

No training: an exact Phase 1 is the simulator's own mass-action reaction part with the
true rate constants, so the one-step residual is exactly the homeostatic term (up to the
Euler clamp at zero); a wrong Phase 1 is the same with perturbed rate constants.
"""

from __future__ import annotations

import numpy as np
import pytest

from trainers.metabolism import evaluate
from trainers.metabolism.config import DEFAULTS
from trainers.metabolism.simulator import reaction_rates, simulate

SIMULATION = {**DEFAULTS["simulation"], "n_metabolites": 12, "n_reactions": 24, "n_frames": 400, "seed": 5}


@pytest.fixture(scope="module")
def simulation():
    return simulate(SIMULATION)


def phase1_residuals(observations, log_k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States c_t and observed dc/dt minus the mass-action reaction part with rate constants 10**log_k."""
    concentrations = observations.concentrations.astype(np.float64)
    states = concentrations[:-1]
    observed = (concentrations[1:] - states) / observations.delta_t
    stoichiometry = observations.stoichiometry.astype(np.float64)
    structure = (observations.substrate_index, observations.substrate_order)
    reaction = np.stack([stoichiometry @ reaction_rates(state, 10.0**log_k, *structure) for state in states])
    return states, observed - reaction


def node_metrics_with_ceiling(simulation, node_function, log_k: np.ndarray) -> dict[str, float]:
    observations, truth = simulation
    concentrations = observations.concentrations.astype(np.float64)
    fits = evaluate.node_function_fits(node_function, concentrations, truth)
    states, residuals = phase1_residuals(observations, log_k)
    return evaluate.node_metrics(evaluate.with_ceilings(fits, evaluate.ceiling_fits(states, residuals, truth)), 1.0)


def test_exact_homeostasis_on_exact_phase1_is_at_the_ceiling(simulation):
    _, truth = simulation
    metrics = node_metrics_with_ceiling(simulation, evaluate.ground_truth_node_function(truth), truth.log_k)
    for t in range(2):
        assert metrics[f"MLP_node_slope_vs_ceiling_{t}"] == pytest.approx(1.0, abs=0.02)
        assert metrics[f"MLP_node_slope_ceiling_ratio_{t}"] == pytest.approx(1.0, abs=0.02)
        gt_offset = metrics[f"MLP_node_gt_offset_{t}"]
        assert metrics[f"MLP_node_offset_ceiling_{t}"] == pytest.approx(gt_offset, rel=0.05)
    assert metrics["worst_slope_vs_ceiling"] == pytest.approx(1.0, abs=0.02)


def test_a_phase1_that_absorbed_signal_lowers_the_ceiling(simulation):
    """Rate constants off by 0.1% leave a different residual: the ceiling moves and the truth is no longer at it.

    (The homeostatic term is ~1000x weaker than the reactions: 0.1% on k moves the ceiling by ~30%, 1% flips a sign.)
    """
    _, truth = simulation
    perturbed = truth.log_k + np.log10(1.001) * np.where(np.arange(len(truth.log_k)) % 2 == 0, 1.0, -1.0)
    metrics = node_metrics_with_ceiling(simulation, evaluate.ground_truth_node_function(truth), perturbed)
    moved = [abs(metrics[f"MLP_node_slope_ceiling_ratio_{t}"] - 1.0) for t in range(2)]
    assert max(moved) > 0.05
    assert abs(np.log(metrics["worst_slope_vs_ceiling"])) > 0.05


def test_a_flat_node_function_is_nowhere_near_its_ceiling(simulation):
    _, truth = simulation
    metrics = node_metrics_with_ceiling(simulation, np.zeros_like, truth.log_k)
    assert metrics["MLP_node_slope_vs_ceiling_0"] == 0.0 and metrics["worst_slope_vs_ceiling"] == 0.0


@pytest.mark.parametrize(
    ("ratios", "worst"),
    [
        ([1.21, 0.62], 0.62),  # |log 0.62| = 0.48 > |log 1.21| = 0.19: the average (0.915) hides it
        ([0.9, 1.5], 1.5),
        ([1.0, 1.0], 1.0),
        ([2.0, 0.5], 2.0),  # equally far: the first type
        ([1.1, -0.2], -0.2),  # the wrong sign is furthest of all
        ([0.0, 0.9], 0.0),
        ([1.0, float("nan")], float("nan")),
    ],
)
def test_worst_slope_ratio_is_the_type_furthest_from_one(ratios, worst):
    found = evaluate.worst_ratio(ratios)
    if np.isnan(worst):
        assert np.isnan(found)
    else:
        assert found == worst


def one_cluster_plus_noise() -> tuple[np.ndarray, np.ndarray]:
    """12 type-0 and 3 type-1 points in one tight cluster, 9 type-1 points scattered far apart."""
    rng = np.random.default_rng(0)
    types = np.array([0] * 12 + [1] * 12)
    cluster = 0.01 * rng.standard_normal((15, 2))
    angles = 2 * np.pi * np.arange(9) / 9
    scattered = 10.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return np.concatenate([cluster, scattered]), types


def test_one_cluster_plus_noise_no_longer_scores_high():
    embeddings, types = one_cluster_plus_noise()
    metrics = evaluate.embedding_clusters(embeddings, types)
    assert metrics["embedding_n_clusters"] == 1
    assert metrics["embedding_cluster_acc"] == pytest.approx(21 / 24)  # the seed's figure: noise as a group
    assert metrics["embedding_cluster_acc_strict"] == pytest.approx(12 / 24)
    assert metrics["embedding_ari"] < 0.3  # 0.28: only the pairs split across noise singletons agree


def test_two_clean_clusters_score_one_on_every_figure():
    rng = np.random.default_rng(1)
    types = np.arange(24) % 2
    embeddings = np.stack([types * 5.0, np.zeros(24)], axis=1) + 0.05 * rng.standard_normal((24, 2))
    metrics = evaluate.embedding_clusters(embeddings, types)
    assert metrics["embedding_cluster_acc"] == metrics["embedding_cluster_acc_strict"] == 1.0
    assert metrics["embedding_ari"] == pytest.approx(1.0)


def test_all_noise_scores_zero_strictly():
    types = np.arange(8) % 2
    angles = 2 * np.pi * np.arange(8) / 8
    embeddings = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    metrics = evaluate.embedding_clusters(embeddings, types)
    assert metrics["embedding_n_clusters"] == 0
    assert metrics["embedding_cluster_acc_strict"] == 0.0 and metrics["embedding_ari"] <= 0.0

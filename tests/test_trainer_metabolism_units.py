"""trainers/metabolism pieces without training: metrics, Visual line, config, strategy plans, simulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memory.errors import ConfigError
from trainers.metabolism import evaluate
from trainers.metabolism.config import DEFAULTS, load_config, parse_strategy
from trainers.metabolism.describe import describe_visual
from trainers.metabolism.simulator import simulate
from trainers.metabolism.strategies import Phase2Plan

REPO = Path(__file__).resolve().parents[1]
SMALL_SIMULATION = {**DEFAULTS["simulation"], "n_metabolites": 10, "n_reactions": 20, "n_frames": 200, "seed": 3}


@pytest.fixture(scope="module")
def small_simulation():
    return simulate(SMALL_SIMULATION)


def test_ground_truth_node_function_gives_unit_ratios(small_simulation):
    observations, truth = small_simulation
    concentrations = observations.concentrations.astype(np.float64)
    fits = evaluate.node_function_fits(evaluate.ground_truth_node_function(truth), concentrations, truth)
    ceilings = [
        {"slope_ceiling": fit["gt_slope"], "offset_ceiling": fit["gt_offset"], "slope_ceiling_ratio": 1.0}
        for fit in fits
    ]
    metrics = evaluate.node_metrics(evaluate.with_ceilings(fits, ceilings), 1.0)
    for t in range(2):
        assert metrics[f"MLP_node_slope_ratio_{t}"] == pytest.approx(1.0, abs=0.01)
        assert metrics[f"MLP_node_offset_ratio_{t}"] == pytest.approx(1.0, abs=0.05)
    assert metrics["MLP_node_gt_slope_1"] == pytest.approx(-0.002)
    assert metrics["MLP_node_gt_offset_1"] == pytest.approx(0.012)
    assert metrics["avg_slope_ratio"] == pytest.approx(1.0, abs=0.01)
    assert metrics["worst_slope_ratio"] == pytest.approx(1.0, abs=0.01)


def test_flat_node_function_gives_zero_ratios(small_simulation):
    observations, truth = small_simulation
    fits = evaluate.node_function_fits(np.zeros_like, observations.concentrations.astype(np.float64), truth)
    assert [fit["slope_ratio"] for fit in fits] == [0.0, 0.0]


def test_separated_embeddings_cluster_perfectly():
    rng = np.random.default_rng(0)
    types = np.arange(40) % 2
    embeddings = np.stack([types * 5.0, np.zeros(40)], axis=1) + 0.05 * rng.standard_normal((40, 2))
    metrics = evaluate.embedding_clusters(embeddings, types)
    assert metrics["embedding_cluster_acc"] == 1.0
    assert metrics["embedding_n_clusters"] == 2
    assert metrics["embedding_silhouette"] > 0.8


def test_one_blob_scores_about_half():
    rng = np.random.default_rng(1)
    types = np.arange(40) % 2
    metrics = evaluate.embedding_clusters(rng.standard_normal((40, 2)) * 0.01 + 3.0, types)
    assert metrics["embedding_cluster_acc"] == pytest.approx(0.5, abs=0.1)
    assert metrics["embedding_n_clusters"] <= 1 or metrics["embedding_cluster_acc"] <= 0.6


def test_rate_constant_r2_against_identity_line():
    truth = np.linspace(-2, -1, 50)
    assert evaluate.rate_constant_metrics(truth, truth)["rate_constants_R2"] == 1.0
    shifted = evaluate.rate_constant_metrics(truth + 0.5, truth)
    assert shifted["rate_constants_R2"] < 0 and shifted["rate_constants_R2_fit"] == pytest.approx(1.0)


VISUAL_ACTIVE = {
    "diverged": False,
    "mlp_node": {
        "magnitude": 0.005,
        "gt_magnitude": 0.006,
        "per_type": [
            {"slope": -0.00091, "gt_slope": -0.001, "linearity_r2": 0.99},
            {"slope": -0.00181, "gt_slope": -0.002, "linearity_r2": 0.98},
        ],
    },
    "embedding": {"n_clusters": 2, "accuracy": 0.97, "n_types": 2},
}


def test_describe_active_and_separated():
    assert describe_visual(VISUAL_ACTIVE) == (
        "MLP_node=active: slopes -0.0009/-0.0018 vs GT -0.001/-0.002, "
        "near-linear, Embeddings=separated: 2 clusters, acc=0.97"
    )


def test_describe_shows_the_ceiling_and_the_noise_honest_figures():
    visual = {
        **VISUAL_ACTIVE,
        "mlp_node": {
            **VISUAL_ACTIVE["mlp_node"],
            "per_type": [
                {**fit, "slope_ceiling": ceiling}
                for fit, ceiling in zip(VISUAL_ACTIVE["mlp_node"]["per_type"], (-0.00098, -0.00144))
            ],
        },
        "embedding": {"n_clusters": 1, "accuracy": 0.875, "accuracy_strict": 0.5, "adjusted_rand_index": 0.28},
    }
    assert describe_visual(visual) == (
        "MLP_node=active: slopes -0.0009/-0.0018 vs GT -0.001/-0.002 (ceiling -0.0010/-0.0014), "
        "near-linear, Embeddings=collapsed: 1 cluster, acc=0.88 (strict 0.50, ARI 0.28)"
    )
    mixed = {"n_clusters": 2, "accuracy": 0.95, "accuracy_strict": 0.7, "adjusted_rand_index": 0.3}
    two = {**visual, "embedding": mixed}
    assert describe_visual(two).endswith("Embeddings=mixed: 2 clusters, acc=0.95 (strict 0.70, ARI 0.30)")


def test_describe_inactive_and_collapsed():
    visual = {
        "diverged": False,
        "mlp_node": {
            "magnitude": 2e-6,
            "gt_magnitude": 0.006,
            "per_type": [
                {"slope": -1e-7, "gt_slope": -0.001, "linearity_r2": 1.0},
                {"slope": 2e-8, "gt_slope": -0.002, "linearity_r2": 1.0},
            ],
        },
        "embedding": {"n_clusters": 1, "accuracy": 0.5, "n_types": 2},
    }
    assert describe_visual(visual) == (
        "MLP_node=inactive: flat at zero (magnitude 2e-06), slopes 0.0000/0.0000 "
        "vs GT -0.001/-0.002, Embeddings=collapsed: 1 cluster, acc=0.50"
    )


def test_describe_diverged_uses_nulls():
    visual = {
        "diverged": True,
        "mlp_node": {
            "magnitude": None,
            "gt_magnitude": 0.006,
            "per_type": [
                {"slope": None, "gt_slope": -0.001, "linearity_r2": None},
                {"slope": None, "gt_slope": -0.002, "linearity_r2": None},
            ],
        },
        "embedding": {"n_clusters": None, "accuracy": None, "n_types": 2},
    }
    assert describe_visual(visual).startswith("MLP_node=diverged")


@pytest.mark.parametrize(
    "text, key",
    [
        ("training:\n  learning_rate_nod: 0.1\n", "'training.learning_rate_nod'"),
        ("training:\n  batch_size: 0\n", "'training.batch_size'"),
        ("training:\n  batch_size: 2.5\n", "'training.batch_size'"),
        ("training:\n  phase2_strategy: residual+curriculum\n", "'training.phase2_strategy'"),
        ("simulation:\n  homeostatic_lambda_per_type: [0.001]\n", "'simulation.homeostatic_lambda_per_type'"),
    ],
)
def test_bad_config_names_the_key(tmp_path, text, key):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=key):
        load_config(path)


@pytest.mark.parametrize("preset", ["tiny", "demo", "seed_scale"])
def test_presets_load(preset):
    load_config(REPO / "configs" / "metabolism" / f"{preset}.yaml")


@pytest.mark.parametrize(
    "text", ["bogus", "residual+rollout", "residual+curriculum", "curriculum+multiscale", "rollout+anchor"]
)
def test_bad_strategies_are_refused(text):
    with pytest.raises(ConfigError, match="phase2_strategy"):
        parse_strategy(text)


def test_strategy_combinations_parse():
    assert parse_strategy("residual+grad_accumulation") == ("residual", frozenset({"grad_accumulation"}))
    assert parse_strategy("amplification") == ("rollout", frozenset({"amplification"}))
    assert parse_strategy("residual+joint+anchor") == ("residual", frozenset({"joint", "anchor"}))


def plan(strategy: str, **training) -> Phase2Plan:
    values = {
        **DEFAULTS["training"],
        "phase2_strategy": strategy,
        "homeostasis_time_step": 32,
        "data_augmentation_loop": 100,
        **training,
    }
    return Phase2Plan.from_training(values)


def test_schedules():
    rng = np.random.default_rng(0)
    curriculum = plan("curriculum", curriculum_stages=2)
    assert [curriculum.rollout_length(b, rng) for b in (0, 49, 50, 99)] == [32, 32, 16, 16]
    multiscale = plan("multiscale", multiscale_levels=3)
    assert {multiscale.rollout_length(b, rng) for b in range(100)} == {32, 16, 8}
    decaying = plan("amplification", amplification_factor=50.0, amplification_decay=True)
    assert decaying.amplification(0) == 50.0 and decaying.final_amplification() == pytest.approx(1.0)
    assert plan("amplification").final_amplification() == 50.0
    warmup = plan("lr_warmup", warmup_fraction=0.1, warmup_peak_factor=10.0, lr_final_factor=0.01)
    multipliers = [warmup.lr_multiplier(step) for step in range(100)]
    assert multipliers[9] == pytest.approx(10.0) and multipliers[0] < 2.0
    assert multipliers[-1] == pytest.approx(0.01, abs=0.01)
    accumulation = plan("residual+grad_accumulation", accumulation_steps=4)
    assert accumulation.accumulation_steps == 4 and accumulation.n_optimizer_steps == 25


def test_simulation_is_seeded_and_mass_action(small_simulation):
    observations, truth = small_simulation
    again, truth_again = simulate(SMALL_SIMULATION)
    assert np.array_equal(observations.concentrations, again.concentrations)
    assert np.array_equal(truth.types, truth_again.types)
    assert observations.concentrations.min() >= 0.0
    assert np.all((truth.log_k >= -2.0) & (truth.log_k <= -1.0))
    assert np.allclose(observations.stoichiometry.sum(axis=0), 0.0)  # mass balanced
    keys = {frozenset(zip(i, o)) for i, o in zip(observations.substrate_index, observations.substrate_order)}
    assert len(keys) == SMALL_SIMULATION["n_reactions"]  # distinct rate laws


def test_random_reactions_have_second_order_terms():
    observations, _ = simulate({**SMALL_SIMULATION, "cycle_fraction": 0.5})
    assert 2 in observations.substrate_order
    assert np.allclose(observations.stoichiometry.sum(axis=0), 0.0)


@pytest.mark.parametrize("strategy", ["rollout+joint", "residual+joint+anchor"])
def test_strategies_that_train_log_k_say_they_relax_phase1_frozen(strategy):
    """The log's Strategy line (the metabolism playbook's names) says which rule of seed 003 is relaxed."""
    from agent.playbook import load_playbook

    text = load_playbook("metabolism").strategy_text(strategy)
    assert "relaxes Phase 1 frozen" in text and "joint refinement" in text

"""configs/demo.yaml judges both metabolite types and the embeddings (issue 17, item 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.spec import load_spec
from trainers.metabolism.evaluate import worst_ratio

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def objective():
    return load_spec(REPO / "configs" / "demo.yaml").objective


def run_metrics(ratio_0: float, ratio_1: float, accuracy: float = 0.5, drop: float = 0.0) -> dict[str, float]:
    """The demo's metrics as trainers/metabolism writes them (worst_slope_ratio by the trainer's own rule)."""
    return {
        "avg_slope_ratio": (ratio_0 + ratio_1) / 2,
        "worst_slope_ratio": worst_ratio([ratio_0, ratio_1]),
        "MLP_node_slope_ratio_0": ratio_0,
        "MLP_node_slope_ratio_1": ratio_1,
        "embedding_cluster_acc": 0.9,
        "embedding_cluster_acc_strict": accuracy,
        "rate_constants_R2": 0.99,
        "rate_constants_R2_drop": drop,
    }


def test_a_failed_type_is_not_converged(objective):
    """1.21 / 0.62: the average (0.915) was `converged`; the worst type (0.62) makes it partial."""
    assert objective.score(run_metrics(1.21, 0.62)).classification == "partial"
    assert objective.score(run_metrics(1.1, 0.85)).classification == "converged"
    assert objective.score(run_metrics(1.3, 0.95)).classification == "partial"


def test_noise_honest_cluster_accuracy_is_a_reward_term(objective):
    chance = objective.score(run_metrics(1.0, 1.0, accuracy=0.5)).reward
    separated = objective.score(run_metrics(1.0, 1.0, accuracy=1.0)).reward
    assert separated - chance == pytest.approx(1 / 3)


def test_a_joint_run_that_costs_phase1_accuracy_scores_zero(objective):
    kept = objective.score(run_metrics(1.0, 1.0, drop=0.005))
    lost = objective.score(run_metrics(1.0, 1.0, drop=0.02))
    assert kept.reward > 0.6 and lost.reward == 0.0 and "rate_constants_R2_drop" in lost.guard_failed

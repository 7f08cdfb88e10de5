"""ucb/rewards.py: target-aware rewards; symmetry, no cancellation, guards, nan as failure."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory.errors import SpecError
from ucb.rewards import Band, Guard, Objective, RewardTerm

RATIO = RewardTerm("slope_ratio", kind="ratio", target=1.0)
SEED_OBJECTIVE = Objective(
    primary="avg_slope_ratio",
    terms=(
        RewardTerm("MLP_node_slope_ratio_0"),
        RewardTerm("MLP_node_slope_ratio_1"),
        RewardTerm("embedding_cluster_acc", kind="maximize", low=0.5, high=1.0, weight=0.5),
    ),
    guards=(Guard("rate_constants_R2", ">=", 0.5),),
    bands=(Band("converged", 0.8, 1.2), Band("partial", 0.3, 3.0)),
)


def metrics(ratio_0: float, ratio_1: float, acc: float = 1.0, r2: float = 0.87) -> dict[str, float]:
    return {
        "avg_slope_ratio": (ratio_0 + ratio_1) / 2,
        "MLP_node_slope_ratio_0": ratio_0,
        "MLP_node_slope_ratio_1": ratio_1,
        "embedding_cluster_acc": acc,
        "rate_constants_R2": r2,
    }


@given(st.floats(min_value=1e-6, max_value=1e6))
def test_ratio_x_and_one_over_x_score_the_same(x):
    assert RATIO.score(x) == pytest.approx(RATIO.score(1 / x), abs=1e-12)


@given(st.floats(min_value=1e-6, max_value=1e6), st.floats(min_value=0.01, max_value=100))
def test_ratio_is_symmetric_around_any_target(x, target):
    term = RewardTerm("r", target=target)
    assert term.score(x) == pytest.approx(term.score(target * target / x), abs=1e-9)


def test_ratio_peaks_at_target_and_five_never_beats_one():
    assert RATIO.score(1.0) == 1.0
    assert RATIO.score(5.0) < RATIO.score(2.0) < RATIO.score(1.0)
    assert RATIO.score(0.5) == pytest.approx(RATIO.score(2.0))
    assert RATIO.score(10.0) == 0.0 and RATIO.score(1000.0) == 0.0


@pytest.mark.parametrize("value", [0.0, -1.0, math.nan, math.inf, -math.inf, None])
def test_impossible_ratios_score_zero(value):
    assert RATIO.score(value) == 0.0


def test_per_type_ratios_do_not_cancel():
    cancelling = SEED_OBJECTIVE.score(metrics(0.5, 1.5))
    perfect = SEED_OBJECTIVE.score(metrics(1.0, 1.0))
    assert perfect.reward == pytest.approx(1.0)
    assert cancelling.reward < 0.85
    assert cancelling.classification == "converged"  # the primary mean looks perfect, the reward does not


def test_maximize_minimize_ranges_and_weights():
    accuracy = RewardTerm("acc", kind="maximize", low=0.5, high=1.0)
    loss = RewardTerm("loss", kind="minimize", low=0.0, high=10.0)
    assert [accuracy.score(v) for v in (0.2, 0.75, 1.0, 2.0)] == [0.0, 0.5, 1.0, 1.0]
    assert [loss.score(v) for v in (0.0, 2.5, 12.0, math.inf)] == [1.0, 0.75, 0.0, 0.0]
    assert accuracy.score(math.inf) == 0.0
    objective = Objective("acc", (accuracy, RewardTerm("loss", kind="minimize", low=0.0, high=10.0, weight=3.0)))
    assert objective.score({"acc": 1.0, "loss": 10.0}).reward == pytest.approx(0.25)


def test_guard_zeroes_the_reward_and_names_itself():
    score = SEED_OBJECTIVE.score(metrics(1.0, 1.0, r2=0.3))
    assert (score.reward, score.classification, score.guard_failed) == (0.0, "failed", "rate_constants_R2 >= 0.5")
    nan_guard = SEED_OBJECTIVE.score(metrics(1.0, 1.0, r2=math.nan))
    assert nan_guard.reward == 0.0 and nan_guard.guard_failed


def test_nan_or_missing_primary_is_a_failure_not_zero():
    nan_run = SEED_OBJECTIVE.score(metrics(math.nan, math.nan))
    assert nan_run.reward is None and nan_run.failure == "nan: avg_slope_ratio"
    assert SEED_OBJECTIVE.score({}).failure == "missing: avg_slope_ratio"
    no_terms = SEED_OBJECTIVE.score({"avg_slope_ratio": 1.0, "rate_constants_R2": 0.9})
    assert no_terms.reward is None and no_terms.failure == "nan: every reward term"


def test_one_nan_term_scores_zero_for_that_term_only():
    score = SEED_OBJECTIVE.score(dict(metrics(1.0, 1.0), MLP_node_slope_ratio_1=math.nan))
    assert score.reward == pytest.approx((1.0 + 0.0 + 0.5) / 2.5)


def test_bands_classify_the_primary_metric():
    assert [SEED_OBJECTIVE.classify({"avg_slope_ratio": v}) for v in (1.0, 0.5, 2.0, 0.1, 5.0, math.nan)] == [
        "converged",
        "partial",
        "partial",
        "failed",
        "failed",
        "failed",
    ]


@pytest.mark.parametrize(
    "make",
    [
        lambda: RewardTerm("x", kind="ratios"),
        lambda: RewardTerm("x", target=0.0),
        lambda: RewardTerm("x", tolerance=1.0),
        lambda: RewardTerm("x", kind="maximize", low=1.0, high=1.0),
        lambda: RewardTerm("x", weight=-1.0),
        lambda: Guard("x", "=>", 1.0),
        lambda: Band("b", 2.0, 1.0),
        lambda: Objective("x", ()),
        lambda: Objective("x", (RewardTerm("x", weight=0.0),)),
    ],
)
def test_invalid_definitions_are_spec_errors(make):
    with pytest.raises(SpecError):
        make()

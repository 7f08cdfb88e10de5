"""The fair protocol of benchmarks/ (issue 15): what every searcher gets, the statistics, the tasks' optima.

- every searcher's first trial on every slot is the spec's base config (run through the harness);
- every Optuna peer is told the worst reward (0.0, a COMPLETE trial) for a diverged, nan or crashed run;
- ``priorities="equal"`` reaches the searcher: every parameter's priority is the same;
- the statistics helpers on small inputs whose answers are known by hand;
- each standard task's known optimum scores 1 (through the task, slot shift and seed offset included),
  nothing scores above it, and the base config is not converged;
- held-out seeds are refused without ``--held-out``;
- the final check: a trainer's recommended config is trained again on the same fresh seeds for
  every searcher, and final regret is scored from those means (a real causal training).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
import statistics
from concurrent.futures import ProcessPoolExecutor

import pytest

from benchmarks import harness
from benchmarks.__main__ import seed_range
from benchmarks.functions import (
    BRANIN_ARGMINS,
    CONDITIONAL_MATTERS,
    HARTMANN6_ARGMIN,
    OPTIMIZERS,
    ROSENBROCK_ARGMIN,
    branin_reward,
    conditional_reward,
    hartmann6_reward,
    rosenbrock_reward,
)
from benchmarks.harness import (
    EQUAL,
    FINAL_SEED_FROM,
    SPEC,
    Campaign,
    final_check,
    final_check_table,
    final_optima,
    optima,
    regret_curve,
    rows,
    run_campaign,
    with_priorities,
)
from benchmarks.searchers import OPTUNA_SEARCHERS, SEARCHERS, available, told_value
from benchmarks.stats import bootstrap_interval, paired_test, simple_regret, wins_ties_losses
from benchmarks.tasks import (
    BRANIN_X,
    CONDITIONAL_PARAMETERS,
    HARTMANN_X,
    HELD_OUT_FROM,
    LR,
    RIDGE_INIT,
    RIDGE_LR,
    SLOT_SHIFT,
    STANDARD,
    branin_landscape,
    conditional_landscape,
    hartmann_landscape,
    make_task,
    ridge_landscape,
    slot_units,
)
from ucb.rewards import WORST_REWARD

SEEDS = range(5)


def recorded_campaign(task, searcher: str, budget: int, priorities: str = EQUAL) -> list[tuple[int, dict]]:
    """(slot, params) of every trial the harness evaluated, in evaluation order."""
    evaluated = []
    evaluate = task.evaluate

    def recording(params, slot, seed):
        evaluated.append((slot, dict(params)))
        return evaluate(params, slot, seed)

    task.evaluate = recording
    run_campaign(task, searcher, 0, budget, priorities)
    return evaluated


@pytest.mark.parametrize("task_name", ["synthetic-lr-cliff", "standard-conditional"])
def test_every_searcher_runs_the_base_config_first_on_every_slot(tmp_path, task_name):
    task = make_task(task_name, 0, tmp_path)
    names, skipped = available(list(SEARCHERS), task.spec)
    assert not set(skipped) - {"grid"}, skipped  # the Optuna peers are installed here (the `bench` extra)
    base = task.spec.base_params()
    for searcher in names:
        first = {}
        for slot, params in recorded_campaign(make_task(task_name, 0, tmp_path), searcher, 12):
            first.setdefault(slot, params)
        assert sorted(first) == list(range(task.spec.n_slots)), searcher
        for slot, params in first.items():
            assert params == pytest.approx(base), (searcher, slot)


def test_failures_are_told_as_the_worst_reward():
    task = make_task("synthetic-lr-cliff", 0, None)
    spec = task.spec
    assert told_value(spec, {"val_acc": math.nan}) == WORST_REWARD == 0.0
    assert told_value(spec, {}) == WORST_REWARD
    assert told_value(spec, {"val_acc": 0.7, "diverged": 1.0}) == WORST_REWARD
    assert told_value(spec, {"val_acc": 0.7}) == pytest.approx(0.7)


@pytest.mark.parametrize("searcher", OPTUNA_SEARCHERS)
def test_optuna_peers_learn_the_worst_reward_from_a_diverged_run(searcher):
    """A diverged run is a COMPLETE trial with value 0.0 in the study (never FAIL, which samplers ignore)."""
    import optuna

    task = make_task("synthetic-lr-cliff", 0, None)
    peer = SEARCHERS[searcher](task, 0, 8)
    for slot, metrics in ((0, {"val_acc": math.nan}), (1, {}), (2, {"val_acc": 0.6})):
        peer.tell(peer.ask(slot), metrics)
    trials = [t for study in peer.studies.values() for t in study.get_trials(deepcopy=False)]
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert [t.value for t in trials] == pytest.approx([0.0, 0.0, 0.6])


class PriorityProbe:
    """A searcher that records the priorities of the spec it is given, and proposes the base config."""

    seen: list[tuple[int, ...]] = []

    def __init__(self, task, seed, budget):
        PriorityProbe.seen.append(tuple(p.priority for p in task.spec.space))
        self.spec = task.spec

    def ask(self, slot):
        from benchmarks.searchers import Trial

        return Trial(slot, self.spec.base_params(), 0)

    def tell(self, trial, metrics):
        pass


def test_equal_priorities_reach_the_searcher(monkeypatch, tmp_path):
    monkeypatch.setitem(SEARCHERS, "probe", PriorityProbe)
    task = make_task("standard-hartmann6", 0, tmp_path)
    assert len({p.priority for p in task.spec.space}) == 6  # the spec ranks them
    PriorityProbe.seen.clear()
    run_campaign(task, "probe", 0, 4, EQUAL)
    run_campaign(task, "probe", 0, 4, SPEC)
    equal, spec = PriorityProbe.seen
    assert len(set(equal)) == 1
    assert spec == tuple(p.priority for p in task.spec.space)
    assert with_priorities(task, SPEC) is task
    with pytest.raises(ValueError, match="priorities"):
        with_priorities(task, "loud")


# ---------------------------------------------------------------------- statistics


def test_simple_regret():
    assert simple_regret(1.0, 0.8) == pytest.approx(0.2)
    assert simple_regret(0.95, 0.97) == 0.0


def test_bootstrap_interval_on_known_inputs():
    assert bootstrap_interval([0.3] * 7) == (0.3, 0.3)
    # The median of a resample of [0, 1] is 0, 0.5 or 1 (1/4, 1/2, 1/4): the 95% interval spans both ends.
    assert bootstrap_interval([0.0, 1.0]) == (0.0, 1.0)
    values = list(range(1, 31))
    low, high = bootstrap_interval(values)
    assert 9 <= low < 15.5 < high <= 22  # about the 10th and 21st of 30 values (order statistics of a median)
    assert bootstrap_interval(values, seed=3) == bootstrap_interval(values, seed=3)


def test_paired_test_on_known_inputs():
    # Six positive differences: the exact two-sided p is 2 / 2**6.
    assert paired_test([1, 2, 3, 4, 5, 6], [0] * 6).p_value == pytest.approx(2 / 64)
    assert paired_test([0.2, 0.3], [0.2, 0.3]).p_value == 1.0
    with pytest.raises(ValueError, match="3 values against 2"):
        paired_test([1, 2, 3], [1, 2])


def test_wins_ties_losses_lower_is_better():
    assert wins_ties_losses([0.1, 0.2, 0.1], [0.2, 0.2, 0.3]) == (2, 1, 0)
    assert wins_ties_losses([0.3], [0.1]) == (0, 0, 1)


def test_regret_against_the_best_found_where_no_optimum_is_known():
    known = Campaign("t", "ucbx", 0, 3, rewards=[0.2, 0.5, 0.4], best_so_far=[0.2, 0.5, 0.5], optimum=1.0)
    ours = Campaign("trainer", "ucbx", 0, 3, rewards=[0.2, None, 0.4], best_so_far=[0.2, 0.2, 0.4])
    theirs = Campaign("trainer", "tpe", 0, 3, rewards=[0.6, 0.1], best_so_far=[0.6, 0.6])
    assert optima([known, ours, theirs]) == {("t", 0): 1.0, ("trainer", 0): 0.6}
    assert optima([theirs, ours]) == {("trainer", 0): 0.6}  # the best of all searchers, whatever the order
    assert regret_curve(known, 1.0) == pytest.approx([0.8, 0.5, 0.5])
    assert regret_curve(theirs, 0.6) == pytest.approx([0.0, 0.0, 0.0])  # an early stop keeps its best


# ---------------------------------------------------------------------- the final check (trainers)


def test_final_regret_is_scored_from_the_final_check_where_there_was_one():
    """A lucky single run (0.9) re-trained to 0.5 loses to a replicated 0.6 that re-trains to 0.7."""
    lucky = Campaign("trainer", "tpe", 0, 2, rewards=[0.9, 0.2], best_so_far=[0.9, 0.9], final_rewards=[0.4, 0.6])
    steady = Campaign(
        "trainer",
        "ucbx",
        0,
        2,
        rewards=[0.6, 0.6],
        best_so_far=[0.6, 0.6],
        final_rewards=[0.7, 0.7],
        final_converged=[True, False],
    )
    known = Campaign("t", "ucbx", 0, 1, rewards=[0.5], best_so_far=[0.5], optimum=1.0, final_rewards=[0.9])
    assert optima([lucky, steady]) == {("trainer", 0): 0.9}  # the curves: best single result found
    assert final_optima([lucky, steady, known]) == {("trainer", 0): pytest.approx(0.7), ("t", 0): 1.0}
    regret = {r.searcher: r.regret for r in rows([steady, lucky])}
    assert regret == {"ucbx": pytest.approx(0.0), "tpe": pytest.approx(0.2)}
    lines = final_check_table([lucky, steady, known]).splitlines()
    assert lines[2] == "| trainer | tpe | 0.500 [0.500, 0.500] | 0.500 | 0.500 | 0.900 | - |", lines[2]  # saved before
    assert lines[3] == "| trainer | ucbx | 0.700 [0.700, 0.700] | 0.700 | 0.700 | 0.600 | 1/2 |", lines[3]
    assert len(lines) == 5  # the known-optimum task is listed as it was checked
    assert final_check_table([Campaign("t", "ucbx", 0, 1, rewards=[0.5], best_so_far=[0.5])]) == ""


def test_the_final_check_trains_each_recommendation_again_on_the_same_fresh_seeds(tmp_path):
    """Real causal trainings: after the budget, the recommended config on seeds no trial used, scored by its mean."""
    with ProcessPoolExecutor(2) as pool:
        evaluated = {}
        for searcher in ("ucbx", "random"):
            task = make_task("trainer-causal", 0, tmp_path, pool)
            calls = evaluated[searcher] = []
            converged = {}
            evaluate = task.evaluate

            def recording(
                params, slot, seed, evaluate=evaluate, calls=calls, converged=converged, objective=task.spec.objective
            ):
                evaluation = evaluate(params, slot, seed)
                reward = objective.score(evaluation.metrics).reward
                calls.append((slot, dict(params), seed, WORST_REWARD if reward is None else reward))
                converged[seed] = objective.score(evaluation.metrics).classification == "converged"
                return evaluation

            task.evaluate = recording
            campaign = run_campaign(task, searcher, 0, 3, final_seeds=2)
            trials, final = calls[:3], calls[3:]
            assert [seed for *_, seed, _ in final] == [FINAL_SEED_FROM, FINAL_SEED_FROM + 1]
            assert not {seed for *_, seed, _ in final} & {seed for *_, seed, _ in trials}
            recommended = campaign.recommended
            assert all((slot, params) == (recommended["slot"], recommended["params"]) for slot, params, *_ in final)
            assert (recommended["slot"], recommended["params"]) in [(slot, params) for slot, params, *_ in trials]
            assert campaign.final_rewards == [reward for *_, reward in final]
            assert campaign.final_converged == [converged[seed] for _, _, seed, _ in final]  # each run's own bands
            assert campaign.final == pytest.approx(statistics.fmean(reward for *_, reward in final))
    synthetic = run_campaign(make_task("synthetic-noisy", 0, tmp_path), "random", 0, 3, final_seeds=2)
    assert synthetic.final is None  # a noise-free value needs no final check


def test_the_final_check_refuses_a_training_seed_the_campaign_used(monkeypatch):
    task = make_task("synthetic-noisy", 0, None)
    monkeypatch.setattr(harness, "FINAL_SEED_FROM", task.spec.base_seed())  # the seed every trial runs with
    with pytest.raises(ValueError, match="already used by the campaign's trials"):
        run_campaign(dataclasses.replace(task, noise_free=False), "random", 0, 3, final_seeds=2)
    monkeypatch.undo()
    recommended = {"slot": 0, "params": task.spec.base_params()}
    with pytest.raises(ValueError, match=rf"final check: training seeds \[{FINAL_SEED_FROM}\] were already used"):
        final_check(task, recommended, 2, {0, FINAL_SEED_FROM})
    rewards, converged = final_check(task, recommended, 2, {0, 1000})
    assert len(rewards) == len(converged) == 2


# ---------------------------------------------------------------------- the standard tasks' optima


def test_the_functions_score_one_at_their_known_optima():
    for argmin in BRANIN_ARGMINS:
        assert branin_reward(*argmin) == pytest.approx(1.0, abs=1e-6)
    assert hartmann6_reward(HARTMANN6_ARGMIN) == pytest.approx(1.0, abs=1e-5)
    assert rosenbrock_reward(*ROSENBROCK_ARGMIN) == 1.0
    optimum, peaks = conditional_landscape(0)
    best = max(OPTIMIZERS, key=peaks.get)
    settings = {"optimizer": best, "lr": optimum[f"lr_{best}"], **{k: v for k, v in optimum.items() if "_" not in k}}
    assert conditional_reward(settings, optimum, peaks) == pytest.approx(1.0)


def test_the_functions_score_below_one_elsewhere():
    rng = random.Random(0)
    for _ in range(2000):
        assert branin_reward(rng.uniform(-5, 10), rng.uniform(0, 15)) < 1.0
        assert hartmann6_reward(tuple(rng.random() for _ in range(6))) < 1.0
        assert rosenbrock_reward(rng.uniform(-2, 2), rng.uniform(-1, 3)) < 1.0


def shifted(parameter, value: float, slot: int) -> float:
    return value + SLOT_SHIFT * (parameter.high - parameter.low) * slot_units(slot)


def optimum_params(name: str, seed: int, slot: int) -> dict:
    """Where each standard task's optimum sits for this seed and slot, computed from its landscape."""
    if name == "standard-branin":
        offset = branin_landscape(seed)
        return {p.key: shifted(p, BRANIN_ARGMINS[1][i] + offset[i], slot) for i, p in enumerate(BRANIN_X)}
    if name == "standard-hartmann6":
        order, offset = hartmann_landscape(seed)
        return {
            HARTMANN_X[order[i]].key: HARTMANN6_ARGMIN[i] + offset[i] + SLOT_SHIFT * slot_units(slot) for i in range(6)
        }
    if name == "standard-log-ridge":
        offset, shift = ridge_landscape(seed), SLOT_SHIFT * 4 * slot_units(slot)
        return {RIDGE_LR.key: 10 ** (1 + offset[0] + shift - 3), RIDGE_INIT.key: 10 ** (1 + offset[1] + shift - 3)}
    optimum, peaks = conditional_landscape(seed)
    best = max(OPTIMIZERS, key=peaks.get)
    values = {
        "optimizer": best,
        "lr": 10 ** (optimum[f"lr_{best}"] - 0.1 * slot_units(slot)),
        "momentum": optimum["momentum"],
        "beta1": optimum["beta1"],
        "warmup": round(10 ** optimum["warmup"]),
        "wd": 10 ** optimum["wd"],
        "dropout": optimum["dropout"],
    }
    return {p.key: values[p.short] for p in CONDITIONAL_PARAMETERS}


@pytest.mark.parametrize("name", list(STANDARD))
def test_each_standard_task_reaches_one_at_its_optimum_on_every_slot(name):
    for seed in SEEDS:
        task = make_task(name, seed, None)
        assert task.optimum == 1.0
        for slot in range(task.spec.n_slots):
            params = optimum_params(name, seed, slot)
            for parameter in task.spec.space:  # the optimum is inside the box
                if parameter.kind != "choice":
                    assert parameter.low <= params[parameter.key] <= parameter.high, (seed, slot, parameter.key)
            score = task.evaluate(params, slot, 0).true_metrics["score"]
            assert score == pytest.approx(1.0, abs=1e-3), (seed, slot)


@pytest.mark.parametrize("name", list(STANDARD))
def test_each_standard_task_base_config_is_not_converged(name):
    for seed in range(30):
        task = make_task(name, seed, None)
        metrics = task.evaluate(task.spec.base_params(), 0, 0).true_metrics
        assert not task.converged(metrics), seed


def test_the_conditional_choice_switches_which_parameters_matter():
    matters = {"sgd": {"momentum"}, "adam": {"beta1", "warmup"}, "adagrad": set()}  # the task as documented
    assert {k: set(v) for k, v in CONDITIONAL_MATTERS.items()} == matters
    optimum, peaks = conditional_landscape(0)
    for optimizer in OPTIMIZERS:
        settings = {"optimizer": optimizer, "lr": optimum[f"lr_{optimizer}"]}
        settings |= {k: v for k, v in optimum.items() if "_" not in k}
        at_best = conditional_reward(settings, optimum, peaks)
        for name in ("momentum", "beta1", "warmup"):
            moved = conditional_reward({**settings, name: settings[name] + 1.0}, optimum, peaks)
            if name in matters[optimizer]:
                assert moved < at_best - 0.01, (optimizer, name)
            else:
                assert moved == at_best, (optimizer, name)


# ---------------------------------------------------------------------- held-out seeds


def options(first: int, count: int, held_out: bool = False) -> argparse.Namespace:
    return argparse.Namespace(first_seed=first, n_seeds=count, held_out=held_out)


def test_held_out_seeds_need_the_flag():
    assert seed_range(options(0, 30)) == list(range(30))
    assert seed_range(options(1000, 10)) == list(range(1000, 1010))  # the old range: development now
    assert seed_range(options(5000, 30)) == list(range(5000, 5030))  # spent by the engine before the replicate rule
    assert seed_range(options(6000, 30)) == list(range(6000, 6030))  # spent by the engine before the priority fix
    with pytest.raises(SystemExit, match=f"held-out range from {HELD_OUT_FROM}.*--held-out"):
        seed_range(options(6990, 20))
    with pytest.raises(SystemExit, match="--held-out runs only seeds 7000-7029"):
        seed_range(options(0, 30, held_out=True))
    assert seed_range(options(HELD_OUT_FROM, 30, held_out=True)) == list(range(7000, 7030))


def test_the_weak_regime_task_is_the_demo_as_shipped(tmp_path):
    """trainer-metabolism-weak: configs/demo.yaml on configs/metabolism/demo.yaml (lr_node_homeo 1e-5), bounds as is."""
    task = make_task("trainer-metabolism-weak", 0, tmp_path)
    assert task.optimum is None  # regret against the best any searcher found
    assert task.spec.base_params()["training.learning_rate_node_homeostasis"] == 1e-5
    assert task.spec.space.get("data_aug").high == 2000
    assert task.spec.trainer.base_config.name == "demo.yaml"


def test_the_final_check_records_whether_each_final_run_converged():
    """Each final run classed by its own metrics (converged from val_acc 0.85): on the noisy task one config can
    converge on one seed and not on the next, and the record keeps them apart."""
    task = dataclasses.replace(make_task("synthetic-noisy", 0, None), noise_free=False)
    base = task.spec.base_params()
    seeds = range(FINAL_SEED_FROM, FINAL_SEED_FROM + 3)

    def accuracies(lr):
        return [task.evaluate({**base, LR.key: lr}, 0, seed).metrics["val_acc"] for seed in seeds]

    lrs = [10 ** (-5 + 5 * i / 400) for i in range(401)]
    mixed = next(lr for lr in lrs if len({value >= 0.85 for value in accuracies(lr)}) == 2)
    rewards, converged = final_check(task, {"slot": 0, "params": {**base, LR.key: mixed}}, 3, {0})
    assert converged == [value >= 0.85 for value in accuracies(mixed)]
    assert rewards == pytest.approx(accuracies(mixed))
    assert final_check(task, {"slot": 0, "params": base}, 3, {0})[1] == [False, False, False]
    assert final_check(task, None, 2, {0}) == ([WORST_REWARD, WORST_REWARD], [False, False])

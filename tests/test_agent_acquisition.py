"""The acquisition engine (agent/acquisition.py) on small known landscapes, and what the surrogate
learns from (agent/surrogate.py): failures at the worst reward, runs in flight as believed points."""

from __future__ import annotations

import math

import numpy as np
import pytest
from agent_helpers import make_policy, make_spec, node, state_of

from agent.acquisition import line
from agent.history import Change
from agent.surrogate import Surrogate, target
from ucb.rewards import WORST_REWARD

LR = "training.lr"
MOMENTUM = "training.momentum"
OPTIMUM = 3e-3  # the best learning rate of the quadratic landscape
ONE_KNOB = """
name: quadratic
trainer:
  command: ["{python}", "trainer.py", "--config", "{config}", "--run-dir", "{run_dir}"]
  base_config: base.yaml
  seed_key: training.seed
slots:
  key: training.time_step
  values: [4]
search_space:
  training.lr: {kind: float, low: 1.0e-6, high: 1.0, log: true, short: lr}
  training.momentum: {kind: float, low: 0.0, high: 0.99, short: momentum}
objective:
  primary: val_acc
  terms:
    - {metric: val_acc, kind: maximize, low: 0.0, high: 1.0}
  bands:
    - {label: converged, low: 0.95, high: 1.01}
    - {label: partial, low: 0.3, high: 0.95}
exploration:
  replicates: 0
"""
BASE = {"training": {"seed": 0, "time_step": 4, "lr": 1e-5, "momentum": 0.5}}


def quadratic(params: dict) -> float:
    """1 at lr = OPTIMUM, falling as a parabola in log10(lr); momentum does not matter."""
    return max(0.0, 1.0 - (math.log10(params[LR] / OPTIMUM) / 3.0) ** 2)


@pytest.fixture
def spec(tmp_path):
    from agent_helpers import write_spec

    from agent.spec import load_spec

    return load_spec(write_spec(tmp_path, ONE_KNOB, base=BASE))


def run(policy, spec, steps: int) -> list:
    """``steps`` proposals on the one slot, each finished with its quadratic reward before the next."""
    records = []
    for node_id in range(1, steps + 1):
        proposal = policy.propose(state_of(records, spec), 0)
        record = proposal.as_record(node_id)
        record.iteration = node_id
        record.reward = quadratic(record.params)
        record.metrics = {"val_acc": record.reward}
        record.status = spec.objective.classify(record.metrics)
        records.append(record)
    return records


def test_on_a_quadratic_in_log_lr_the_proposals_reach_the_optimum_within_twelve_runs(spec):
    records = run(make_policy(spec), spec, 12)
    best = max(records, key=lambda r: r.reward)
    assert abs(math.log10(best.params[LR] / OPTIMUM)) < 0.15, [r.params[LR] for r in records]


def test_every_engine_decision_names_its_parent_change_and_numbers(spec):
    records = run(make_policy(spec), spec, 8)
    proposal = make_policy(spec).propose(state_of(records, spec), 0)
    assert proposal.parent is not None and len(proposal.changes) == 1
    assert f"node {proposal.parent}" in proposal.rationale
    assert "expected improvement" in proposal.rationale and "predicted" in proposal.rationale


def test_a_line_spans_the_whole_range_and_steps_close_to_the_value(spec):
    parameter = spec.space.get(LR)
    values = line(parameter, 1e-3)
    assert min(values) == parameter.low and max(values) == parameter.high
    assert any(1e-3 < v < 2e-3 for v in values) and any(5e-4 < v < 1e-3 for v in values)
    assert 1e-3 not in values


def test_a_diverged_run_teaches_the_worst_reward_and_a_lost_one_teaches_nothing():
    diverged = node(1, None, status="failed", failure="diverged: nan in loss")
    lost = node(2, None, status="failed", failure="lost: the job vanished")
    crashed = node(3, None, status="failed", failure="crash: exit 1")
    scored = node(4, None, reward=0.4)
    assert target(diverged) == WORST_REWARD and target(crashed) == WORST_REWARD
    assert target(lost) is None and target(scored) == 0.4


def test_the_engine_does_not_walk_back_into_a_region_that_diverged(spec):
    """Above lr 0.05 every run diverges; once the surrogate has seen that, no proposal goes there."""
    policy = make_policy(spec)
    records = []
    for node_id in range(1, 21):
        proposal = policy.propose(state_of(records, spec), 0)
        record = proposal.as_record(node_id)
        record.iteration = node_id
        if record.params[LR] > 0.05:
            record.failure, record.status = "diverged: nan in loss", "failed"
        else:
            record.reward = quadratic(record.params)
            record.metrics = {"val_acc": record.reward}
            record.status = spec.objective.classify(record.metrics)
        records.append(record)
    late_diverged = [r for r in records[10:] if r.failure]
    assert len(late_diverged) <= 1, [(r.node_id, r.params[LR]) for r in records]


def test_a_run_in_flight_shrinks_the_uncertainty_around_it(spec):
    records = [
        node(i, None, reward=quadratic({LR: lr}), params={LR: lr, MOMENTUM: 0.5})
        for i, lr in enumerate((1e-6, 1e-5, 1e-4, 1e-2, 1.0), start=1)
    ]
    surrogate = Surrogate.fit(spec.space, 1, records)
    pending = [({LR: 1e-3, MOMENTUM: 0.5}, 0)]
    _, before = surrogate.predict(pending)
    _, after = surrogate.with_pending(pending).predict(pending)
    assert after[0] < 0.5 * before[0]


def test_after_a_block_ends_the_engine_changes_a_code_strategy_once(tmp_path):
    from agent_helpers import SPEC, every_slot_started, root_params

    spec = make_spec(tmp_path, SPEC.replace("  playbook: metabolism\n", "").replace("replicates: 1", "replicates: 0"))
    policy = make_policy(spec)
    rng = np.random.default_rng(0)
    records = [
        node(i, None, reward=float(rng.uniform(0.2, 0.6)), params=root_params(batch_size=int(2 + i)))
        for i in range(1, 9)
    ]
    for written, due in ((7, False), (8, True), (9, True)):  # due from a block's end until a code change
        proposal = policy.propose(state_of(every_slot_started(records), spec, entries_written=written), 0)
        assert "expected improvement" in proposal.rationale
        assert any(c.key == "training.phase2_strategy" for c in proposal.changes) == due, written
    switched = proposal.as_record(50)
    switched.iteration, switched.reward, switched.status = 50, 0.3, "partial"
    proposal = policy.propose(state_of(every_slot_started(records + [switched]), spec, entries_written=9), 0)
    assert len(proposal.changes) == 1 and proposal.change.key != "training.phase2_strategy"


def test_pins_the_parent_breaks_are_changes_of_the_proposal(tmp_path):
    from agent_helpers import SPEC, every_slot_started, root_params

    from memory.directives import parse_directive

    spec = make_spec(tmp_path, SPEC.replace("  playbook: metabolism\n", "").replace("replicates: 1", "replicates: 0"))
    records = [node(i, None, reward=0.1 * i, params=root_params(batch_size=2 + i)) for i in range(1, 7)]
    pin = [parse_directive("pin data_aug = 50", 1)]
    snapshot = state_of(every_slot_started(records), spec, directives=pin, entries_written=5)
    proposal = make_policy(spec).propose(snapshot, 0)
    assert "expected improvement" in proposal.rationale
    assert proposal.params["training.data_augmentation_loop"] == 50
    assert Change("training.data_augmentation_loop", 100, 50) in proposal.changes and len(proposal.changes) == 2


def test_a_code_change_goes_to_a_strategy_no_node_has_tried_while_one_is_left(tmp_path):
    from agent_helpers import SPEC, every_slot_started, root_params

    spec = make_spec(tmp_path, SPEC.replace("  playbook: metabolism\n", "").replace("replicates: 1", "replicates: 0"))
    strategies = spec.space.get("training.phase2_strategy").choices
    tried = [s for s in strategies if s != "separate_losses"]
    records = [
        node(i, None, reward=0.9 if s == "rollout" else 0.1 + 0.01 * i, params=root_params(phase2_strategy=s))
        for i, s in enumerate(tried, start=1)
    ]
    proposal = make_policy(spec).propose(state_of(every_slot_started(records), spec, entries_written=8), 0)
    switch = [c for c in proposal.changes if c.key == "training.phase2_strategy"]
    assert switch and switch[0].new == "separate_losses"


# ---------------------------------------------------------------- the cost of a decision (issue 14)


def quadratic_records(count: int, *, slots: int = 1) -> list:
    """``count`` finished runs spread over the lr range, with the quadratic landscape's reward."""
    records = []
    for i in range(count):
        lr = 10 ** (-6 + 6 * i / max(1, count - 1))
        momentum = 0.9 * (i % 7) / 6
        params = {LR: lr, MOMENTUM: momentum}
        records.append(node(i + 1, None, slot=i % slots, reward=quadratic(params), params=params))
    return records


def test_a_candidate_row_built_from_its_parents_row_equals_its_own_encoding(spec):
    """The engine builds a candidate's inputs by changing its parent's row (`Encoder.changed`);
    they must be the inputs the candidate's own config would get."""
    surrogate = Surrogate.fit(spec.space, 4, quadratic_records(12, slots=4))
    encoder = surrogate.encoder
    parent = {LR: 1e-4, MOMENTUM: 0.3}
    for key, value in ((LR, 2.5e-2), (MOMENTUM, 0.9)):
        changed = encoder.changed(encoder.row(parent, 2), [(key, value)])
        assert np.array_equal(changed, encoder.row({**parent, key: value}, 2))
    assert encoder.row(parent, 3)[-1] == 1.0 and encoder.row(parent, 0)[-1] == 0.0  # the slot is an input


def test_a_refit_with_a_kept_kernel_predicts_as_a_fresh_fit_with_that_kernel(spec):
    """The refit between two tunings (one factorisation, `_fixed_kernel_gp`) is the same posterior
    as scikit-learn's own fit with the tuned kernel and no optimiser."""
    from sklearn.gaussian_process import GaussianProcessRegressor

    records = quadratic_records(30)
    tuned = Surrogate.fit(spec.space, 1, records[:20])
    refit = Surrogate.fit(spec.space, 1, records, kernel=tuned.kernel)
    reference = GaussianProcessRegressor(kernel=tuned.kernel, normalize_y=True, optimizer=None)
    reference.fit(refit.fitted_features, [target(r) for r in refit.points])
    queries = [({LR: 10**e, MOMENTUM: 0.5}, 0) for e in np.linspace(-6, 0, 9)]
    rows = refit.encoder.matrix(queries)
    assert np.allclose(refit.predict_mean(rows), reference.predict(rows))
    assert np.array_equal(refit.kernel.theta, tuned.kernel.theta)  # the hyperparameters were kept


def test_a_decision_on_a_long_log_encodes_only_what_the_fit_and_the_candidates_need(spec, monkeypatch):
    """With far more finished runs than a fit uses, a decision encodes the `MAX_POINTS` runs of
    the fit once, not every run (the cost of a decision stays bounded by the log's length);
    a second decision after one more result re-encodes only the new run."""
    from agent import surrogate as module

    records = quadratic_records(3 * module.MAX_POINTS)
    policy = make_policy(spec)
    encoded = []
    original = module.Encoder.row
    monkeypatch.setattr(
        module.Encoder, "row", lambda self, params, slot: encoded.append(1) or original(self, params, slot)
    )
    policy.propose(state_of(records, spec), 0)
    first = len(encoded)
    assert module.MAX_POINTS <= first < module.MAX_POINTS + 50, first
    encoded.clear()
    more = quadratic_records(3 * module.MAX_POINTS + 1)[-1:]
    more[0].node_id = 10_000
    policy.propose(state_of(records + more, spec), 0)
    assert len(encoded) < 50, len(encoded)  # the new run, the parents, the pending: not the fit again


def test_a_preferred_parent_outside_the_fit_is_still_the_parent(spec):
    """Beyond `MAX_POINTS` runs the fit holds the best and the most recent only; a prefer-parent
    directive naming an old, middling run outside it still makes that run the parent."""
    from agent.surrogate import MAX_POINTS, training_set
    from memory.directives import parse_directive

    records = quadratic_records(MAX_POINTS + 60)
    fitted = {r.node_id for r in training_set(records)}
    old = next(r for r in records if r.node_id not in fitted)
    directive = parse_directive(f"prefer-parent {old.node_id}", 1)
    proposal = make_policy(spec).propose(state_of(records, spec, directives=[directive]), 0)
    assert proposal.parent == old.node_id, proposal.rationale
    assert "expected improvement" in proposal.rationale


def test_on_a_flat_start_the_parents_tie_and_follow_ucb_order(spec):
    """Every reward equal: every predicted mean is the same, and the parent is the first in UCB
    order (as the rule path would take it), not the first in the log."""
    records = quadratic_records(12)
    for i, record in enumerate(records):
        record.parent = None if i == 0 else 1 + (i - 1) // 3
        record.reward = 0.4
        record.metrics = {"val_acc": 0.4}
    from agent.acquisition import PARENTS

    policy = make_policy(spec)
    snapshot = state_of(records, spec)
    ucb_order = [parent.node_id for parent in policy.parent_candidates(snapshot) if parent]
    assert ucb_order[:PARENTS] != [r.node_id for r in records[:PARENTS]]  # else the orders cannot be told apart
    surrogate = policy.surrogates.get(snapshot.finished)
    places = {node_id: place for place, node_id in enumerate(ucb_order)}
    ranked = policy.acquisition.parents(surrogate, policy.parents(snapshot), lambda: places)
    assert [parent.node_id for parent in ranked] == ucb_order[:PARENTS]
    proposal = policy.propose(snapshot, 0)
    assert proposal.parent in ucb_order[:PARENTS]


def test_a_parent_that_ran_before_a_key_was_added_is_predicted_with_the_base_value(spec):
    """A run logged before `momentum` joined the search space has no value for it: it is no point
    of the fit, and as a parent it is predicted at the base value (no KeyError)."""
    records = quadratic_records(10)
    del records[3].params[MOMENTUM]
    policy = make_policy(spec)
    snapshot = state_of(records, spec)
    surrogate = policy.surrogates.get(snapshot.finished)
    predicted = policy.acquisition.predicted(surrogate, policy.parents(snapshot))
    assert records[3].node_id in predicted and records[3].node_id not in surrogate.fitted_means
    assert policy.propose(snapshot, 0) is not None


def test_a_changed_choice_or_bool_column_equals_its_own_encoding(tmp_path):
    """One-hot choices and bools, not only numbers, are changed in place correctly."""
    from agent_helpers import write_spec

    from agent.spec import load_spec

    text = ONE_KNOB.replace(
        "  training.momentum: {kind: float, low: 0.0, high: 0.99, short: momentum}",
        "  training.momentum: {kind: float, low: 0.0, high: 0.99, short: momentum}\n"
        "  training.optimizer: {kind: choice, choices: [sgd, adam, adagrad], short: opt}\n"
        "  training.nesterov: {kind: bool, short: nesterov}",
    )
    base = {"training": {**BASE["training"], "optimizer": "sgd", "nesterov": False}}
    space = load_spec(write_spec(tmp_path, text, base=base)).space
    from agent.surrogate import Encoder

    encoder = Encoder(space, 2)
    parent = {LR: 1e-3, MOMENTUM: 0.5, "training.optimizer": "sgd", "training.nesterov": False}
    for key, value in (("training.optimizer", "adagrad"), ("training.nesterov", True)):
        changed = encoder.changed(encoder.row(parent, 1), [(key, value)])
        assert np.array_equal(changed, encoder.row({**parent, key: value}, 1)), key


def test_a_value_edited_to_nan_in_the_log_is_read_as_missing_and_decisions_go_on(spec):
    """A hand edit wrote `lr=nan` into a Config line: that value is not read (the run counts as
    one without a learning rate: no point of the fit, the base value as a parent), and the
    engine still decides (before, every decision raised scikit-learn's "Input X contains NaN")."""
    records = quadratic_records(8)
    records[4].params[LR] = math.nan
    snapshot = state_of(records, spec)
    assert LR not in snapshot.get(records[4].node_id).params
    proposal = make_policy(spec).propose(snapshot, 0)
    assert "expected improvement" in proposal.rationale

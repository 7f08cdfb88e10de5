"""benchmarks/pruning.py at toy size: the curves are the task's (same config, same curve; the last report is the
final value), and a pruning campaign stops runs through agent/pruning.py within the same slot-time budget."""

from __future__ import annotations

import math

import pytest

from benchmarks.pruning import REPORTS, budget_time, draw_curve, run_campaign
from benchmarks.tasks import LR, make_task


@pytest.fixture
def task(tmp_path):
    return make_task("synthetic-lr-cliff", 0, tmp_path)


def test_a_config_has_one_curve_ending_at_its_final_value(task):
    params = task.spec.base_params()
    curve = draw_curve(task, params, 1, 7, 0)
    assert curve == draw_curve(task, params, 1, 7, 0)
    assert curve.fractions == tuple(k / REPORTS for k in range(1, REPORTS + 1))
    assert curve.values[-1] == curve.final["val_acc"] == task.evaluate(params, 1, 7).metrics["val_acc"]
    assert draw_curve(task, params, 1, 8, 0).values[:-1] != curve.values[:-1]  # another seed, another curve

    blown = draw_curve(task, {**params, LR.key: 1.0}, 1, 7, 0)  # above the cliff: nan
    assert math.isnan(blown.values[-1]) and blown.fractions[-1] <= 0.5


@pytest.mark.parametrize("method", ["ucbx-median", "tpe-median"])
def test_a_pruning_campaign_stops_runs_within_the_budget(task, method):
    plain = run_campaign(task, method.split("-")[0], 0, 24)
    pruned = run_campaign(task, method, 0, 24)
    assert plain.stopped == 0 and 0 < pruned.stopped < pruned.trials
    assert len(pruned.stopped_finals) == pruned.stopped and 0 <= pruned.stopped_would_win <= pruned.stopped
    unit = sum(task.durations) / len(task.durations)
    limit = (budget_time(task, 24) * len(task.durations) + sum(task.durations)) / unit
    assert pruned.slot_time <= limit and plain.slot_time <= limit

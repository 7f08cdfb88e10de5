"""Stopping runs that cannot win (agent/pruning.py) with a real trainer of known curves (tests/curve_trainer.py):
each rule stops at the right fraction, never a replicate of the best, never within the parent's spread, never a
trainer that writes no progress; a daemon killed between the decision and the kill, or between the kill and the
entry, restarts with one entry and one decision (local and real SLURM)."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest
import yaml
from reliability.harness import environment, ucbx
from rich.console import Console
from slurm_helpers import require_slurm
from waiting import release, wait_for

from agent import daemon
from agent.driver import Exploration
from agent.folder import ExplorationFolder
from agent.history import Proposal
from agent.live import Progress, SlotView, StatusView, _tables, format_status, progress_text, status_view
from agent.review.folder import ExplorationFiles
from agent.review.report import write_report
from agent.spec import PruningSettings, load_spec
from memory.crash import ENV, EXIT
from memory.errors import SpecError
from memory.notebook import parse_notebook
from memory.progress import PROGRESS_NAME
from slots.journal import IN_FLIGHT, Journal
from slots.runner import EXIT_STATUS

TRAINER = Path(__file__).with_name("curve_trainer.py")
STEPS = 10
SPEC = """
name: prune
trainer:
  command: ["{python}", "TRAINER", "--config", "{config}", "--run-dir", "{run_dir}"]
  base_config: base.yaml
  seed_key: train.seed
slots:
  key: slot.width
  values: [8]
search_space:
  train.lr: {kind: float, low: 1.0e-4, high: 1.0, log: true, short: lr, priority: 1}
  train.momentum: {kind: float, low: 0.0, high: 0.99, short: mom, priority: 2}
frozen: [curve]
objective:
  primary: score
  terms:
    - {metric: score, kind: maximize, low: 0.0, high: 1.0}
  bands:
    - {label: converged, low: 0.8, high: 1.01}
    - {label: partial, low: 0.3, high: 0.8}
exploration:
  budget: BUDGET
  replicates: REPLICATES
  poll_s: 0.1
  pruning: PRUNING
"""
LOCAL = """launcher:
  kind: local
  timeout_s: 300
  grace_s: 1
  gpus: none
"""
SLURM = """launcher:
  kind: slurm
  timeout_s: 300
  grace_s: 1
  poll_s: 0.2
  poll_max_s: 1.0
"""
MEDIAN = {"rule": "median", "min_fraction": 0.3, "min_runs": 3, "metric": "score", "goal": "maximize"}


def line(final: float, bend: dict[float, float] | None = None) -> list[float]:
    """``final * f`` at f = 0.1 .. 1.0, with the values at the fractions of ``bend`` replaced."""
    values = [round(final * step / STEPS, 6) for step in range(1, STEPS + 1)]
    for fraction, value in (bend or {}).items():
        values[round(fraction * STEPS) - 1] = value
    return values


def make(tmp_path: Path, plan: dict, pruning, budget: int, replicates: int = 0, launcher: str = LOCAL) -> Path:
    """An exploration spec of the curve trainer with ``plan`` (node id -> run), its folder's path."""
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    base = {"slot": {"width": 8}, "train": {"lr": 0.05, "momentum": 0.5, "seed": 0}, "curve": {"plan_file": ""}}
    base["curve"]["plan_file"] = str(plan_file)
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    text = textwrap.dedent(SPEC).replace("TRAINER", str(TRAINER)).replace("BUDGET", str(budget))
    text = text.replace("REPLICATES", str(replicates)).replace("PRUNING", json.dumps(pruning))
    (tmp_path / "spec.yaml").write_text(text + textwrap.dedent(launcher))
    return tmp_path / "spec.yaml"


def open_exploration(spec: Path, tmp_path: Path) -> Exploration:
    loaded = load_spec(spec)
    return Exploration(loaded, ExplorationFolder(tmp_path / "runs", loaded.name))


def run_dir(exploration: Exploration, node_id: int) -> Path:
    return exploration.folder.run_dir(node_id)


def finish_earlier_runs(exploration: Exploration, count: int) -> None:
    """Passes until ``count`` runs are written (each ends by itself) and the next one is launched."""

    def written(count: int) -> bool:
        daemon.step_once(exploration)
        return len(exploration.reader.entries()) >= count

    for node_id in range(1, count + 1):
        wait_for(lambda n=node_id: written(n), 120, f"node {node_id}'s entry", step=0.1)
    assert len(exploration.reader.entries()) == count


def progress_written(exploration: Exploration, node_id: int) -> bool:
    path = run_dir(exploration, node_id) / PROGRESS_NAME
    return path.exists() and len(path.read_text().splitlines()) == STEPS


def held_run_judged(exploration: Exploration, node_id: int) -> Journal:
    """Once the held run has written every line: one pass, which judges them; the journal."""
    wait_for(lambda: progress_written(exploration, node_id), 60, f"node {node_id}'s progress")
    daemon.step_once(exploration)
    return exploration.journal


def entry_of(exploration: Exploration, node_id: int, problems: list[str] | None = None):
    """Passes until ``node_id``'s entry is written (what they say goes to ``problems``); the entry (one only)."""

    def written() -> list:
        (problems if problems is not None else []).extend(daemon.step_once(exploration).problems)
        return [e for e in exploration.reader.entries() if e.node_id == node_id]

    entries = wait_for(written, 120, f"node {node_id}'s entry", step=0.1)
    assert len(entries) == 1
    return entries[0]


@pytest.fixture
def held(tmp_path):
    """Every held run is released when the test ends, passed or not (no job left behind)."""
    yield
    for folder in (tmp_path / "runs" / "iterations").glob("node_*"):
        release(folder)


EARLIER = {"1": {"values": line(0.8)}, "2": {"values": line(0.7)}, "3": {"values": line(0.9)}}


def test_median_stops_a_run_at_the_first_fraction_below_the_median_of_earlier_runs(tmp_path, held):
    # the median of the earlier runs at f is 0.8 f: node 4 is above it at 30% and 40%, below from 50%
    bad = line(0.85, {0.5: 0.15, 0.6: 0.2, 0.7: 0.25, 0.8: 0.3, 0.9: 0.35, 1.0: 0.4})
    plan = {**EARLIER, "default": {"values": line(0.5)}, "4": {"values": bad, "hold": True}}
    exploration = open_exploration(make(tmp_path, plan, MEDIAN, budget=4), tmp_path)
    finish_earlier_runs(exploration, 3)
    job = held_run_judged(exploration, 4).by_iteration(4)
    assert job.stop["rule"] == "median" and job.stop["fraction"] == 0.5 and job.stop["step"] == 5
    assert job.stop["value"] == 0.15 and job.stop["threshold"] == pytest.approx(0.4) and job.stop["runs"] == 3
    assert "asked_at" in job.stop
    daemon.stop_local_jobs(exploration)  # a daemon stopping now leaves a stopped job to end as stopped
    assert exploration.journal.by_iteration(4).status == "running"
    status = format_status(status_view(exploration))
    assert "[####################] 100% 10/10" in status and "score=0.4; stopping: at 50% (step 5/10)" in status
    entry = entry_of(exploration, 4)
    assert entry.status == "failed"
    assert entry.failure == (
        "pruned: at 50% (step 5/10): score 0.15 below the median 0.4 of 3 earlier runs of slot_0 (width=8) there"
    )
    assert entry.metrics == {"score": 0.4}  # the last progress line
    assert entry.observation.startswith("pruned: at 50%")
    assert exploration.journal.by_iteration(4).failure_kind == "pruned"
    assert [j.node_id for j in exploration.journal.jobs() if j.stop] == [4]
    snapshot = exploration.snapshot()
    assert snapshot.get(4).reward is None and 4 not in [
        p.node_id for p in exploration.policy.parent_candidates(snapshot) if p
    ]
    assert not snapshot.get(4).failure.startswith("diverged")

    report = write_report(ExplorationFiles.open(exploration.folder.root), tmp_path / "out").read_text()
    assert "![score while training](report/learning_curves.png)" in report
    assert "4 of 4 runs reported progress (`progress.jsonl`); 1 were stopped early" in report
    assert f"- node 4 (iter 4): {entry.failure}" in report
    assert (tmp_path / "out" / "report" / "learning_curves.png").stat().st_size > 10_000


def test_median_never_stops_a_run_at_its_last_line(tmp_path, held):
    # below the median only at 100%: the training is over there, a stop would save nothing and lose the run
    last_low = line(0.85, {1.0: 0.1})
    plan = {**EARLIER, "default": {"values": line(0.5)}, "4": {"values": last_low, "hold": True}}
    exploration = open_exploration(make(tmp_path, plan, MEDIAN, budget=4), tmp_path)
    finish_earlier_runs(exploration, 3)
    assert not held_run_judged(exploration, 4).by_iteration(4).stop
    release(run_dir(exploration, 4))
    entry = entry_of(exploration, 4)
    assert entry.failure == "" and entry.metrics == {"score": 0.1}


def checkpoints_only(values: list[float], steps: set[int]) -> list[float | None]:
    """``values`` at ``steps`` (1-based); the other lines say only a loss (curve_trainer.py's null)."""
    return [value if step in steps else None for step, value in enumerate(values, start=1)]


def test_a_metric_reported_only_at_checkpoints_is_judged_there_against_the_earlier_runs_in_between(tmp_path, held):
    # the metabolism trainer's way: the objective's metrics at a few checkpoints, a loss on every line.
    # The earlier runs say their score at odd steps; node 4 at even ones, so at 60% the median is
    # interpolated between the earlier runs' 50% and 70% (0.8 x 0.6 = 0.48).
    odd, even = {1, 3, 5, 7, 9, 10}, {2, 4, 6, 8}
    earlier = {str(node): {"values": checkpoints_only(run["values"], odd)} for node, run in EARLIER.items()}
    bad = checkpoints_only(line(0.85, {0.6: 0.2, 0.8: 0.25}), even)
    plan = {**earlier, "default": {"values": line(0.5)}, "4": {"values": bad, "hold": True}}
    pruning = {"rule": "median", "min_fraction": 0.3, "min_runs": 3}  # the objective's reward of a line
    exploration = open_exploration(make(tmp_path, plan, pruning, budget=4), tmp_path)
    finish_earlier_runs(exploration, 3)
    job = held_run_judged(exploration, 4).by_iteration(4)
    assert job.stop["fraction"] == 0.6 and job.stop["step"] == 6 and job.stop["runs"] == 3
    assert job.stop["value"] == 0.2 and job.stop["threshold"] == pytest.approx(0.48)
    # the status shows the primary's latest value (step 8's checkpoint), though the last line says only a loss
    assert exploration.journal.by_iteration(4).status == "running"  # no pass since: the journal says so still
    assert " left, score=0.25; stopping: at 60% (step 6/10)" in format_status(status_view(exploration))
    entry = entry_of(exploration, 4)
    assert entry.status == "failed" and entry.failure.startswith("pruned: at 60% (step 6/10)")
    # each metric's latest value: the score of the last checkpoint (step 8), the loss of the last line
    assert entry.metrics == {"score": 0.25, "loss": 0.1}


def test_asha_stops_a_run_at_the_rung_where_it_leaves_the_top_share(tmp_path, held):
    # rungs at 20%, 40%, 80% (eta 2); the earlier runs' rewards there are 0.8/0.7/0.9 times the fraction
    bad = line(0.95, {0.3: 0.2, 0.4: 0.29, 0.5: 0.3, 0.6: 0.31, 0.7: 0.32, 0.8: 0.33, 0.9: 0.34, 1.0: 0.35})
    plan = {**EARLIER, "default": {"values": line(0.5)}, "4": {"values": bad, "hold": True}}
    pruning = {"rule": "asha", "min_fraction": 0.2, "eta": 2, "min_runs": 3}  # judged by the objective's reward
    exploration = open_exploration(make(tmp_path, plan, pruning, budget=4), tmp_path)
    finish_earlier_runs(exploration, 3)
    job = held_run_judged(exploration, 4).by_iteration(4)
    # at 40% the values are 0.36, 0.32, 0.29 (node 4), 0.28: the top half's cut is 0.32
    assert job.stop["rule"] == "asha" and job.stop["fraction"] == 0.4 and job.stop["metric"] == "reward"
    assert job.stop["value"] == pytest.approx(0.29) and job.stop["threshold"] == pytest.approx(0.32)
    entry = entry_of(exploration, 4)
    assert entry.failure.startswith("pruned: at 40% (step 4/10): reward 0.29 below the rung's cut 0.32 (the top 1/2")


def test_a_replicate_of_the_best_is_never_stopped_and_ends_with_its_own_result(tmp_path, held):
    # node 2 is the leader's replicate: below node 1 everywhere, which the median rule would stop at 30%
    plan = {"1": {"values": line(0.9)}, "2": {"values": line(0.3), "hold": True}, "default": {"values": line(0.5)}}
    pruning = {**MEDIAN, "min_runs": 1}
    exploration = open_exploration(make(tmp_path, plan, pruning, budget=2, replicates=1), tmp_path)
    finish_earlier_runs(exploration, 1)
    journal = held_run_judged(exploration, 2)
    assert Proposal.from_payload(0, journal.by_iteration(2).payload).replicate_of == 1
    assert journal.by_iteration(2).stop == {} and journal.by_iteration(2).status == "running"
    progress = run_dir(exploration, 2) / PROGRESS_NAME
    with open(progress, "ab") as handle:  # garbage after the run's lines: said once, no crash
        handle.write(b"\x00\xff not json\n[1, 2]\n")
    said = daemon.step_once(exploration).problems
    assert [p for p in said if str(progress) in p] == [
        f"{progress}: 2 unreadable lines skipped (first: line 11: not JSON)"
    ]
    assert not [p for p in daemon.step_once(exploration).problems if str(progress) in p]
    release(run_dir(exploration, 2))
    entry = entry_of(exploration, 2)
    assert entry.is_replicate and entry.failure == "" and entry.metrics["score"] == 0.3


def test_a_run_within_its_parents_spread_is_never_stopped(tmp_path, held):
    # node 1 (0.9 f) and its replicate node 2 (0.5 f): the median is 0.7 f; node 3 (0.6 f) is below it,
    # but within its parent's spread
    plan = {"1": {"values": line(0.9)}, "2": {"values": line(0.5)}, "3": {"values": line(0.6), "hold": True}}
    pruning = {**MEDIAN, "min_runs": 2}
    exploration = open_exploration(make(tmp_path, {**plan, "default": plan["1"]}, pruning, 3, replicates=1), tmp_path)
    finish_earlier_runs(exploration, 2)
    journal = held_run_judged(exploration, 3)
    assert Proposal.from_payload(0, journal.by_iteration(3).payload).parent == 1
    assert journal.by_iteration(3).stop == {}
    release(run_dir(exploration, 3))
    assert entry_of(exploration, 3).failure == ""


def test_a_trainer_without_progress_is_never_stopped_and_status_says_so_once(tmp_path, held):
    plan = {"default": {"values": line(0.9), "silent": True}, "2": {"values": line(0.1), "silent": True, "hold": True}}
    exploration = open_exploration(make(tmp_path, plan, {**MEDIAN, "min_runs": 1}, budget=3), tmp_path)
    daemon.step_once(exploration)
    wait_for(lambda: (run_dir(exploration, 1) / EXIT_STATUS).exists(), 60, "node 1 to end")
    said = daemon.step_once(exploration).problems
    assert [p for p in said if "wrote no progress" in p] == [
        "node 1 wrote no progress (run_dir/progress.jsonl, see the README): "
        "runs of this trainer show no progress bar and are never stopped early"
    ]
    wait_for(lambda: (run_dir(exploration, 2) / "starts.txt").exists(), 60, "node 2 to start")
    assert not [p for p in daemon.step_once(exploration).problems if "progress" in p]
    assert exploration.journal.by_iteration(2).stop == {}
    assert "no progress reported" in format_status(status_view(exploration))
    release(run_dir(exploration, 2))
    later: list[str] = []
    assert (
        entry_of(exploration, 2, later).failure == ""
    )  # its own result (the bands class 0.1 failed, not a job failure)
    assert not [p for p in later if "progress" in p]  # said once, not again when node 2 ends


@pytest.mark.parametrize(
    "spec_value, message",
    [
        ("sometimes", "exploration.pruning: must be one of none, median, asha, got 'sometimes'"),
        ({"rule": "median", "min_fraction": 1.5}, "exploration.pruning.min_fraction: must be < 1"),
        ({"rule": "asha", "eta": 1}, "exploration.pruning.eta: must be > 1, got 1"),
        ({"rule": "median", "metric": "loss"}, "exploration.pruning.goal: missing: say whether loss is better"),
        ({"rule": "median", "goal": "minimize"}, "exploration.pruning.goal: is only read with pruning.metric"),
        ({"rule": "median", "patience": 3}, "exploration.pruning.patience: unknown key"),
        ({"min_fraction": 0.5}, "exploration.pruning.rule: missing"),
    ],
)
def test_a_bad_pruning_setting_is_one_line_naming_the_key(tmp_path, spec_value, message):
    with pytest.raises(SpecError) as raised:
        load_spec(make(tmp_path, {"default": {"values": [1]}}, spec_value, budget=1))
    assert message in str(raised.value) and str(tmp_path / "spec.yaml") in str(raised.value)
    assert len(str(raised.value).splitlines()) == 1


# ---------------------------------------------------------------- restarts


def stop_decided(folder: Path) -> dict:
    with Journal(folder) as journal:
        job = journal.by_iteration(4)
        return job.stop if job else {}


def restart_after_a_crash(tmp_path: Path, launcher: str, point: str) -> None:
    """Three runs written, node 4 held: `ucbx step` killed at ``point``, then restarted until the entry is in."""
    bad = line(0.85, {fraction / 10: 0.05 for fraction in range(5, 11)})
    plan = {**EARLIER, "default": {"values": line(0.5)}, "4": {"values": bad, "hold": True}}
    spec = make(tmp_path, plan, MEDIAN, budget=4, launcher=launcher)
    folder = tmp_path / "runs"
    exploration = open_exploration(spec, tmp_path)
    exploration.pruner.settings = PruningSettings()  # rule none: this process only sets the scene
    finish_earlier_runs_until_launched(exploration)
    wait_for(lambda: progress_written(exploration, 4), 120, "node 4's progress")
    exploration.journal.close()

    crashed = ucbx("step", str(folder), "--no-launch", env=environment(**{ENV: f"{point}:1"}))
    if point == "collect.after-finish":  # the stop was made by a pass that ended well; the crash comes later
        assert crashed.returncode == 0, crashed.stderr
        wait_for(lambda: (folder / "iterations/node_0004" / EXIT_STATUS).exists(), 120, "node 4 to end")
        crashed = ucbx("step", str(folder), "--no-launch", env=environment(**{ENV: f"{point}:1"}))
        assert crashed.returncode == EXIT, crashed.stderr
    else:
        assert crashed.returncode == EXIT, crashed.stderr
    decided = stop_decided(folder)
    assert decided["fraction"] == 0.5 and decided["decided_at"] > 0
    if point == "prune.after-decision":
        assert "asked_at" not in decided and not (folder / "iterations/node_0004" / EXIT_STATUS).exists()

    def written() -> list:
        done = ucbx("step", str(folder), "--no-launch")
        assert done.returncode == 0, done.stderr
        entries = parse_notebook((folder / "prune_analysis.md").read_text()).entries
        return [e for e in entries if e.node_id == 4]

    entries = wait_for(written, 120, "node 4's entry")
    assert len(entries) == 1 and entries[0].failure.startswith("pruned: at 50% (step 5/10): score 0.05 below")
    assert stop_decided(folder)["decided_at"] == decided["decided_at"]  # decided once
    assert written() == entries  # a further pass writes nothing more
    with Journal(folder) as journal:
        assert [job.node_id for job in journal.jobs() if job.stop] == [4]
        assert journal.jobs(status=IN_FLIGHT) == [] and journal.by_iteration(4).failure_kind == "pruned"
    assert len((folder / "iterations/node_0004/starts.txt").read_text().split()) == 1  # never run again


def finish_earlier_runs_until_launched(exploration: Exploration) -> None:
    finish_earlier_runs(exploration, 3)
    assert exploration.journal.by_iteration(4).status in IN_FLIGHT


@pytest.mark.parametrize("point", ["prune.after-decision", "prune.after-kill", "collect.after-finish"])
def test_a_daemon_killed_while_stopping_a_run_restarts_with_one_entry_and_one_decision(tmp_path, held, point):
    restart_after_a_crash(tmp_path, LOCAL, point)


@pytest.mark.slurm
@pytest.mark.parametrize("point", ["prune.after-decision", "prune.after-kill"])
def test_under_slurm_a_daemon_killed_while_stopping_a_run_restarts_with_one_entry(tmp_path, held, point):
    require_slurm()
    restart_after_a_crash(tmp_path, SLURM, point)


def test_the_progress_bar_says_fraction_elapsed_remaining_and_the_metric():
    progress = Progress(fraction=0.25, step=5, of=20, remaining_s=180.0, metric="loss", value=0.3125)
    assert (
        progress_text(progress, 60.0) == "[#####---------------]  25% 5/20, 0:01:00 elapsed, ~0:03:00 left, loss=0.3125"
    )
    assert progress_text(None, 60.0) == ""
    slots = [SlotView(0, "width=8", "running", 3, 60.0, "lr: 0.1 -> 0.2", progress), SlotView(1, "width=16", "idle")]
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(_tables(StatusView("x", "runs/x", 2, 8, slots, "")))  # the live view
    assert "[#####---------------]  25% 5/20, ~0:03:00 left, loss=0.3125" in console.export_text()

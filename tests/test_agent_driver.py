"""The driver with a stand-in trainer (a real process writing analysis.log): runs, resumes,
steps, edits before launch, restart exactness, signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import git
import pytest
import yaml
from agent_helpers import LR_NODE, SLURM_LAUNCHER, check_folder, fake_spec, scores_lines
from slurm_helpers import require_slurm
from waiting import wait_for

from agent import daemon
from agent.cli import main
from agent.driver import Exploration
from agent.evidence import Ledger
from agent.folder import ExplorationFolder
from agent.history import record_from_entry
from agent.spec import load_spec
from memory.notebook import parse_notebook
from slots.journal import Journal

REPO = Path(__file__).resolve().parents[1]


def test_run_writes_every_iteration_and_resumes(tmp_path):
    spec = fake_spec(tmp_path)
    folder = tmp_path / "runs"
    assert main(["run", str(spec), "--workdir", str(folder), "--iterations", "6"]) == 0
    entries = check_folder(folder, "unit", 6)
    originals = [e for e in entries if not e.is_replicate]
    assert len(scores_lines(folder, "unit")) == len(originals)
    assert Journal(folder).jobs(status=("queued", "running")) == []
    assert load_spec(folder / "spec.yaml").base == load_spec(spec).base  # the folder's copy stands alone

    assert main(["run", str(spec), "--workdir", str(folder), "--iterations", "2"]) == 0
    entries = check_folder(folder, "unit", 8)
    assert entries[6].iteration == 7


def test_step_no_launch_writes_configs_that_a_person_may_edit(tmp_path, capsys):
    spec = fake_spec(tmp_path)
    folder = tmp_path / "runs"
    assert main(["step", str(spec), "--workdir", str(folder), "--no-launch"]) == 0
    assert Journal(folder).jobs() == []
    assert sorted(p.name for p in (folder / "slots").glob("*.yaml")) == [f"slot_0{i}.yaml" for i in range(4)]
    assert "then `ucbx step` launches it" in capsys.readouterr().out

    slot_file = folder / "slots" / "slot_02.yaml"
    config = yaml.safe_load(slot_file.read_text())
    config["training"]["learning_rate_node_homeostasis"] = 0.02
    slot_file.write_text(yaml.safe_dump(config))
    assert main(["step", str(spec), "--workdir", str(folder)]) == 0
    jobs = Journal(folder).jobs()
    assert len(jobs) == 4
    edited = next(job for job in jobs if job.slot == 2)
    assert edited.payload["params"]["training.learning_rate_node_homeostasis"] == 0.02
    while Journal(folder).jobs(status=("queued", "running")):
        assert main(["step", str(spec), "--workdir", str(folder), "--wait", "--no-launch"]) == 0
    assert main(["step", str(spec), "--workdir", str(folder), "--no-launch"]) == 0
    entries = parse_notebook((folder / "unit_analysis.md").read_text()).entries
    assert len(entries) == 4
    entry = next(e for e in entries if e.slot == 2)
    assert entry.mutation == "lr_node_homeo: 0.01 -> 0.02" and "edited before launch" in entry.extra["Rationale"]


def test_a_hand_edit_of_two_keys_is_logged_as_two_changes_and_credited_to_neither(tmp_path):
    spec = fake_spec(tmp_path)
    folder = tmp_path / "runs"
    assert main(["step", str(spec), "--workdir", str(folder), "--no-launch"]) == 0
    slot_file = folder / "slots" / "slot_01.yaml"
    config = yaml.safe_load(slot_file.read_text())
    config["training"]["learning_rate_node_homeostasis"] = 0.02
    config["training"]["batch_size"] = 16
    slot_file.write_text(yaml.safe_dump(config))
    assert main(["step", str(spec), "--workdir", str(folder)]) == 0
    while Journal(folder).jobs(status=("queued", "running")):
        assert main(["step", str(spec), "--workdir", str(folder), "--wait", "--no-launch"]) == 0
    assert main(["step", str(spec), "--workdir", str(folder), "--no-launch"]) == 0
    entries = parse_notebook((folder / "unit_analysis.md").read_text()).entries
    entry = next(e for e in entries if e.slot == 1)
    assert entry.mutation == "lr_node_homeo: 0.01 -> 0.02; batch_size: 8 -> 16"
    assert "edited before launch: lr_node_homeo=0.02, batch_size=16" in entry.extra["Rationale"]
    loaded = load_spec(spec)
    record = record_from_entry(entry, loaded.space, 0.9)
    assert [c.key for c in record.changes] == [LR_NODE, "training.batch_size"] and record.change is None
    parent = record_from_entry(next(e for e in entries if e.slot == 0), loaded.space, 0.1)
    ledger = Ledger([replace(parent, node_id=0, slot=1), replace(record, parent=0)], {0: 0.1, record.node_id: 0.9})
    assert not ledger.tried(LR_NODE, 1) and not ledger.tried("training.batch_size", 1)


def test_an_edited_config_that_breaks_the_spec_is_not_launched(tmp_path, capsys):
    spec = fake_spec(tmp_path)
    folder = tmp_path / "runs"
    assert main(["step", str(spec), "--workdir", str(folder), "--no-launch"]) == 0
    slot_file = folder / "slots" / "slot_01.yaml"
    config = yaml.safe_load(slot_file.read_text())
    config["training"]["homeostasis_time_step"] = 4
    slot_file.write_text(yaml.safe_dump(config))
    assert main(["step", str(spec), "--workdir", str(folder)]) == 0
    assert {job.slot for job in Journal(folder).jobs()} == {0, 2, 3}
    assert "slot_01.yaml: training.homeostasis_time_step" in capsys.readouterr().out


def test_a_crash_between_append_and_collected_writes_no_second_entry(tmp_path):
    spec = fake_spec(tmp_path)
    folder = tmp_path / "runs"
    assert main(["run", str(spec), "--workdir", str(folder), "--iterations", "4"]) == 0
    journal = Journal(folder)
    last = journal.jobs()[-1]
    journal.update(last.id, collected=False)
    git.Repo(folder).git.reset("--soft", "HEAD~1")  # the crash came before the commit
    assert main(["step", str(spec), "--workdir", str(folder), "--no-launch"]) == 0
    assert journal.get(last.id).collected
    check_folder(folder, "unit", 4, clean=False)


@pytest.mark.parametrize("lines_kept", [1, 2, 6])
def test_an_append_cut_on_a_line_boundary_is_set_aside_and_written_again(tmp_path, lines_kept):
    """A crash mid-append whose cut falls after a newline leaves an entry with missing fields:
    it must not count as the job's result; it goes to <log>.torn and the entry is written whole."""
    spec = fake_spec(tmp_path)
    folder = tmp_path / "runs"
    assert main(["run", str(spec), "--workdir", str(folder), "--iterations", "4"]) == 0
    log = folder / "unit_analysis.md"
    text = log.read_text()
    last_header = text.rindex("## Iter 4:")
    kept = "".join(text[last_header:].splitlines(keepends=True)[:lines_kept])
    log.write_text(text[:last_header] + kept)  # the cut, on a line boundary
    journal = Journal(folder)
    node_id = parse_notebook(text).entries[-1].node_id
    job = next(j for j in journal.jobs() if j.node_id == node_id)
    journal.update(job.id, collected=False)
    git.Repo(folder).git.reset("--soft", "HEAD~1")
    assert main(["step", str(spec), "--workdir", str(folder), "--no-launch"]) == 0
    assert journal.get(job.id).collected
    check_folder(folder, "unit", 4, clean=False)
    assert (folder / "unit_analysis.md.torn").read_text() == kept + "\n"


def test_a_pending_slot_already_in_the_journal_is_not_launched_twice(tmp_path):
    gate = tmp_path / "release"  # no job ends before the test says so: no step finds a slot to refill
    spec = load_spec(fake_spec(tmp_path, gate=gate))
    exploration = Exploration(spec, ExplorationFolder(tmp_path / "runs", spec.name))
    try:
        daemon.step_once(exploration, launch=False)
        pending = exploration.reader.pending()[0]
        (pending.path.parent / "copy.json").write_bytes(pending.path.read_bytes())
        daemon.step_once(exploration, launch=True)
        (pending.path.parent / "copy.json").rename(pending.path)  # as if the unlink never happened
        daemon.step_once(exploration, launch=True)
        assert len(exploration.journal.jobs()) == 4
        assert not pending.path.exists()
    finally:  # the jobs end with the test, passed or failed
        gate.touch()
        jobs = exploration.journal.jobs()
        wait_for(lambda: all((Path(job.run_dir) / "analysis.log").exists() for job in jobs), what="the released jobs")


def test_budget_stops_the_daemon(tmp_path):
    spec = fake_spec(tmp_path, budget=5)
    folder = tmp_path / "runs"
    assert main(["run", str(spec), "--workdir", str(folder)]) == 0
    assert len(parse_notebook((folder / "unit_analysis.md").read_text()).entries) == 5


def test_fresh_needs_yes(tmp_path, capsys):
    spec = fake_spec(tmp_path)
    assert main(["run", str(spec), "--workdir", str(tmp_path / "runs"), "--fresh"]) == 2
    assert "add --yes" in capsys.readouterr().err


def test_status_shows_slots_best_and_budget(tmp_path, capsys):
    spec = fake_spec(tmp_path)
    folder = tmp_path / "runs"
    assert main(["run", str(spec), "--workdir", str(folder), "--iterations", "4"]) == 0
    capsys.readouterr()
    assert main(["status", str(spec), "--workdir", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "unit: 4/48 iterations" in out and "slot_3 (homeostasis_time_step=64)" in out
    # four baselines, none replicated yet: the best is only a leader
    assert "best: none confirmed yet; node " in out and "awaiting replicates (0 of 1)" in out and "top UCB:" in out


def test_sigterm_ends_local_jobs_and_the_next_run_reruns_them(tmp_path):
    spec = fake_spec(tmp_path, sleep=30.0)
    folder = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "run", str(spec), "--workdir", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(Journal(folder).jobs(status="running")) < 4:
        time.sleep(0.2)
    assert len(Journal(folder).jobs(status="running")) == 4
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=60) == 0, daemon.stdout.read()
    jobs = Journal(folder).jobs()
    assert {job.status for job in jobs} == {"queued"}
    assert all(job.external_id == "" for job in jobs)
    slow = fake_spec(tmp_path, sleep=0.2)
    assert main(["run", str(slow), "--workdir", str(folder), "--iterations", "4"]) == 0
    entries = parse_notebook((folder / "unit_analysis.md").read_text()).entries
    assert sorted(e.node_id for e in entries) == [1, 2, 3, 4]
    assert all(e.status != "failed" for e in entries)


@pytest.mark.slurm
def test_slurm_jobs_outlive_the_daemon_and_are_reattached(tmp_path):
    require_slurm()  # skips, or fails when UCBX_REQUIRE_SLURM=1
    spec = fake_spec(tmp_path, sleep=6.0, budget=4, launcher=SLURM_LAUNCHER)
    folder = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "run", str(spec), "--workdir", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(Journal(folder).jobs()) < 4:
        time.sleep(0.2)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=60) == 0, daemon.stdout.read()
    left = Journal(folder).jobs(status=("queued", "running"))
    assert left and all(job.external_id for job in left)  # still in SLURM's hands
    assert main(["run", str(spec), "--workdir", str(folder)]) == 0
    entries = parse_notebook((folder / "unit_analysis.md").read_text()).entries
    assert sorted(e.node_id for e in entries) == [1, 2, 3, 4]
    assert all(e.status != "failed" for e in entries)


def test_a_directive_added_after_a_proposal_is_obeyed_at_launch(tmp_path, capsys):
    spec = fake_spec(tmp_path)
    folder = tmp_path / "runs"
    assert main(["step", str(spec), "--workdir", str(folder), "--no-launch"]) == 0
    memory = folder / "unit_memory.md"
    memory.write_text(memory.read_text().replace("## Directives\n", "## Directives\n- pin lr_node_homeo = 0.02\n"))
    assert main(["step", str(spec), "--workdir", str(folder)]) == 0
    assert "breaks a directive" in capsys.readouterr().out  # dropped, proposed again, launched
    jobs = Journal(folder).jobs()
    assert len(jobs) == 4
    assert all(job.payload["params"]["training.learning_rate_node_homeostasis"] == 0.02 for job in jobs)

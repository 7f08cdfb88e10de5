"""Faults in training: every way a training job goes wrong, in one real exploration.

The fake trainer's ``fault.plan`` gives chosen nodes a fault; the others train normally,
so the loop must go on around the failures. A node whose job failed must be recorded
with the right failure kind, carry no reward (a failure mark, never a 0.0 that looks
real), never be chosen as a parent while a real result exists, and the exploration
must reach its budget. Two faults come from outside: a job's trainer killed while it
runs (``vanish``: the runner sees its child killed), and a job whose runner and trainer
both vanish, twice (run once more, then reported ``lost``). On the real single-node
SLURM, a job cancelled with ``scancel`` from outside is recorded ``cancelled``.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from agent.spec import load_spec
from slots.journal import Journal
from slots.runner import RUNNER_INFO
from ucb.tree import Tree, score_entry

from .harness import (
    SLURM,
    check_exploration,
    entries_of,
    environment,
    kill_group,
    record_figures,
    start_ucbx,
    wait_for,
    write_spec,
)

PLAN = {
    2: "crash",
    3: "hang",
    4: "nan",
    5: "diverged",
    6: "no-metrics",
    7: "truncated",
    8: "garbage",
    9: "garbage-ok",
    10: "oom",
    11: "sigkill",
    12: "vanish",
    13: "vanish",
}
# node -> (journal failure kind or None for a finished job, text the entry's Failure line holds)
EXPECTED = {
    2: ("crash", "exit code 3: RuntimeError: fake trainer crashed on purpose"),
    3: ("timeout", "wall-clock timeout of 8 s"),
    4: ("diverged", "nan in score"),
    5: ("diverged", "diverged: 1"),
    6: ("crash", "exit 0 without analysis.log"),
    7: (None, "missing: score"),
    8: ("crash", "exit 0 with no metric in analysis.log"),
    10: ("oom", "MemoryError"),
    11: ("crash", "killed by SIGKILL"),
    12: ("crash", "killed by SIGKILL"),
    13: ("lost", "ended without writing exit_status.json"),
}
BUDGET = 18


def kill_from_outside(run_dir: Path, with_runner: bool) -> None:
    """Kill a hanging job's trainer (and, ``with_runner``, its runner first), as a person or the OOM killer would."""
    info = json.loads((run_dir / RUNNER_INFO).read_text())
    if with_runner:
        os.kill(info["pid"], signal.SIGKILL)
    os.killpg(info["child_pid"], signal.SIGKILL)


def recorded_running(folder: Path, node: int, attempt: int) -> bool:
    """The daemon has recorded ``node``'s job as running, with the handle of its attempt number ``attempt``."""
    with Journal(folder) as journal:
        job = next((job for job in journal.jobs() if job.node_id == node), None)
    return job is not None and job.status == "running" and job.attempts == attempt and bool(job.external_id)


def test_every_training_fault_is_recorded_with_its_kind_and_the_loop_goes_on(tmp_path):
    spec_path = write_spec(tmp_path, slots=2, budget=BUDGET, plan=PLAN, timeout=8)
    folder = tmp_path / "runs"
    daemon = start_ucbx("run", str(spec_path), "--workdir", str(folder))
    killed: dict[tuple[int, int], bool] = {}
    deadline = time.monotonic() + 600
    try:
        while daemon.poll() is None and time.monotonic() < deadline:
            for node, with_runner in ((12, False), (13, True)):
                run_dir = folder / "iterations" / f"node_{node:04d}"
                pid_file = run_dir / "hanging.pid"  # written by a `vanish` trainer once it runs
                if pid_file.exists() and (run_dir / RUNNER_INFO).exists():
                    attempt = len((run_dir / "starts.txt").read_text().split())
                    # killed only once the daemon watches it: a job it recorded running, this attempt's handle
                    if (node, attempt) not in killed and recorded_running(folder, node, attempt):
                        pid_file.unlink()  # first: the next attempt's trainer writes its own
                        kill_from_outside(run_dir, with_runner)
                        killed[node, attempt] = True
            time.sleep(0.1)
    finally:
        if daemon.poll() is None:
            kill_group(daemon)
    output = daemon.stdout.read()
    assert daemon.returncode == 0, output

    counts = check_exploration(folder, BUDGET)
    entries = {e.node_id: e for e in entries_of(folder).entries}
    journal = Journal(folder)
    jobs = {job.node_id: job for job in journal.jobs()}
    spec = load_spec(spec_path)
    tree = Tree.from_entries(list(entries.values()), spec.objective)
    classified = {}
    for node, (kind, text) in EXPECTED.items():
        entry, job = entries[node], jobs[node]
        assert entry.status == "failed", (node, entry)
        assert job.failure_kind == kind, (node, job.failure_kind, job.reason)
        assert text in entry.failure or text in job.stderr_tail, (node, entry.failure)
        reward, failure, _, _ = score_entry(entry, spec.objective, None)
        assert reward is None and failure, (node, reward, failure)  # a failure, never a 0.0
        if not entry.is_replicate:
            assert tree.nodes[node].reward is None and tree.nodes[node].is_failure, (node, tree.nodes[node])
        classified[kind or "missing metric"] = classified.get(kind or "missing metric", 0) + 1
    assert set(killed) == {(12, 1), (13, 1), (13, 2)}, killed  # every kill from outside happened
    assert jobs[13].attempts == 2  # run once more, then lost
    assert entries[9].status != "failed" and math.isclose(  # garbage around a good value
        entries[9].metrics["score"],
        float(
            (folder / "iterations/node_0009/analysis.log").read_text(errors="replace").split("score: ")[-1].split()[0]
        ),
        rel_tol=1e-6,
    )
    failed_ids = {node for node, e in entries.items() if e.status == "failed" and jobs[node].status == "failed"}
    assert not {e.next_parent for e in entries.values()} & failed_ids, "a failed node was chosen as parent"
    assert not {e.parent for e in entries.values()} & failed_ids, "a failed node was branched from"
    scores = (folder / "rel_ucb_scores.txt").read_text()
    for node in EXPECTED:
        if not entries[node].is_replicate:
            line = next(line for line in scores.splitlines() if line.startswith(f"Node {node}:"))
            assert "failed=" in line, line
    healthy = [node for node in entries if node not in PLAN]  # the loop went on around them
    assert len(healthy) == BUDGET - len(PLAN) and all(jobs[node].status == "done" for node in healthy), healthy
    assert all(score_entry(entries[node], spec.objective, None)[0] is not None for node in healthy)
    record_figures(
        "training-faults",
        faults=len(EXPECTED) + 1,
        classified=classified,
        outside_kills=len(killed),
        entries=counts["entries"],
    )


def slurm_problem() -> str | None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from test_slots_slurm import slurm_problem as problem

    return problem()


@pytest.mark.slurm
def test_a_slurm_job_cancelled_from_outside_is_recorded_cancelled_and_the_loop_goes_on(tmp_path):
    problem = slurm_problem()
    if problem is not None:
        if os.environ.get("UCBX_REQUIRE_SLURM") == "1":
            pytest.fail(problem)
        pytest.skip(problem)
    spec_path = write_spec(tmp_path, slots=2, budget=5, plan={2: "vanish"}, timeout=120, launcher=SLURM)
    folder = tmp_path / "runs"
    daemon = start_ucbx("run", str(spec_path), "--workdir", str(folder), env=environment())
    try:
        hanging = folder / "iterations/node_0002/hanging.pid"  # written by the `vanish` trainer once it runs
        # a daemon that exits first (it crashed) ends the wait at once, with its output, not after 180 s
        assert wait_for(lambda: hanging.exists() or daemon.poll() is not None, limit=180)
        assert hanging.exists(), daemon.stdout.read()
        job = next(j for j in Journal(folder).jobs() if j.node_id == 2)
        subprocess.run(["scancel", job.external_id], check=True, timeout=30)
        daemon.wait(timeout=300)
    finally:
        if daemon.poll() is None:
            kill_group(daemon)
    output = daemon.stdout.read()
    assert daemon.returncode == 0, output
    check_exploration(folder, 5)
    job = next(j for j in Journal(folder).jobs() if j.node_id == 2)
    entry = next(e for e in entries_of(folder).entries if e.node_id == 2)
    assert (job.status, job.failure_kind) == ("failed", "cancelled"), job
    assert entry.status == "failed" and entry.failure.startswith("cancelled"), entry
    record_figures("training-faults-slurm", faults=1, classified={"cancelled": 1})

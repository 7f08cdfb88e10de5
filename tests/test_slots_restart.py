"""Restart semantics: a driver process really killed with SIGKILL, then a new one.

The driver below is the loop an agent runs, reduced to the slots/ calls: take the
folder lock, `recover`, submit the iterations not yet in the journal, `refresh`
until all have finished. Each job appends to its starts.txt, so a launch made
twice is seen.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from slots.journal import JobRecord, Journal
from slots.runner import RUNNER_INFO, process_start

JOB = Path(__file__).with_name("slots_job.py")
DRIVER = """
import json, sys, time
from pathlib import Path
from slots.journal import Journal
from slots.launcher import JobRequest, make_launcher
from slots.lock import FolderLock

folder, job, plan = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
with FolderLock(folder):
    journal = Journal(folder)
    launcher = make_launcher("local", {"grace_s": 1}, folder)
    launcher.recover(journal)
    for iteration, mode, seconds in plan:
        if journal.by_iteration(iteration) is None:
            command = ["{python}", job, "{run_dir}", mode, str(seconds)]
            launcher.submit(JobRequest(iteration, iteration, iteration - 1, None, folder / "config.yaml",
                                       folder / f"iter_{iteration}", command), journal)
    print("submitted", flush=True)
    while journal.jobs(status=("queued", "running")):
        launcher.refresh(journal)
        time.sleep(0.05)
"""


def start_driver(folder: Path, plan: list) -> subprocess.Popen:
    (folder / "config.yaml").write_text("training:\n  lr: 0.1\n")
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(folder), str(JOB), json.dumps(plan)], stdout=subprocess.PIPE, text=True
    )


def run_driver_to_the_end(folder: Path, plan: list) -> None:
    driver = start_driver(folder, plan)
    driver.communicate(timeout=30)
    assert driver.returncode == 0


def kill_driver(driver: subprocess.Popen) -> None:
    driver.kill()  # SIGKILL: no cleanup of any kind
    driver.wait()


def starts(folder: Path, iteration: int) -> int:
    path = folder / f"iter_{iteration}" / "starts.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


def wait_for(condition, limit: float = 15) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def kill_job_and_runner(folder: Path, iteration: int) -> None:
    """What a reboot does to a job: its runner and its process group vanish."""
    path = folder / f"iter_{iteration}" / RUNNER_INFO
    wait_for(path.exists)
    info = json.loads(path.read_text())
    for pid in (info["pid"], info["child_pid"]):
        os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: process_start(info["pid"]) is None and process_start(info["child_pid"]) is None)


def test_running_job_is_reattached_and_finished_one_is_collected(tmp_path):
    plan = [[1, "sleep", 0.3], [2, "sleep", 2.5]]
    driver = start_driver(tmp_path, plan)
    assert driver.stdout.readline().strip() == "submitted"
    before = {r.iteration: r for r in Journal(tmp_path).jobs()}
    kill_driver(driver)
    wait_for(lambda: (tmp_path / "iter_1" / "exit_status.json").exists())  # finished with nobody watching
    assert process_start(int(before[2].external_id)) == before[2].process_start  # still running

    run_driver_to_the_end(tmp_path, plan)

    after = {r.iteration: r for r in Journal(tmp_path).jobs()}
    assert set(after) == {1, 2}
    assert all(job.status == "done" and job.attempts == 1 for job in after.values())
    assert after[2].external_id == before[2].external_id
    assert starts(tmp_path, 1) == starts(tmp_path, 2) == 1


def test_driver_killed_at_any_moment_launches_nothing_twice_and_loses_nothing(tmp_path):
    plan = [[1, "sleep", 0.3], [2, "sleep", 0.3], [3, "sleep", 0.3]]
    delays = (0.05, 0.12, 0.16, 0.2, 0.3, 0.6)  # before, during and after the submissions (~0.1-0.2 s)
    for round_, delay in enumerate(delays):
        folder = tmp_path / f"round_{round_}"
        folder.mkdir()
        driver = start_driver(folder, plan)
        time.sleep(delay)
        kill_driver(driver)
        run_driver_to_the_end(folder, plan)
        jobs = Journal(folder).jobs()
        assert [job.iteration for job in jobs] == [1, 2, 3], f"killed after {delay} s"
        assert all(job.status == "done" and job.attempts == 1 for job in jobs), f"killed after {delay} s"
        assert [starts(folder, i) for i in (1, 2, 3)] == [1, 1, 1], f"killed after {delay} s"


def test_job_that_died_with_the_driver_is_run_once_more_then_reported_lost(tmp_path):
    plan = [[1, "sleep", 30]]
    driver = start_driver(tmp_path, plan)
    assert driver.stdout.readline().strip() == "submitted"
    wait_for(lambda: starts(tmp_path, 1) == 1)
    kill_driver(driver)
    kill_job_and_runner(tmp_path, 1)

    second = start_driver(tmp_path, plan)
    assert second.stdout.readline().strip() == "submitted"
    job = Journal(tmp_path).by_iteration(1)
    assert (job.status, job.attempts) == ("running", 2)
    assert job.reason.startswith("attempt 1: lost: runner pid ") and job.reason.endswith("; relaunched")
    assert (tmp_path / "iter_1" / "attempt_1" / "exit_status.json").exists() is False
    assert (tmp_path / "iter_1" / "attempt_1" / "stdout.txt").exists()
    wait_for(lambda: starts(tmp_path, 1) == 2)
    kill_driver(second)
    kill_job_and_runner(tmp_path, 1)

    run_driver_to_the_end(tmp_path, plan)
    job = Journal(tmp_path).by_iteration(1)
    assert (job.status, job.failure_kind, job.attempts) == ("failed", "lost", 2)
    assert job.reason == f"runner pid {job.external_id} ended without writing exit_status.json"
    assert starts(tmp_path, 1) == 2


def journal_row_without_handle(folder: Path, iteration: int, mode: str, seconds: float) -> list[str]:
    """The row a driver killed inside `submit` leaves: written, but no pid recorded yet."""
    run_dir = folder / f"iter_{iteration}"
    run_dir.mkdir(parents=True)
    command = [sys.executable, str(JOB), str(run_dir), mode, str(seconds)]
    Journal(folder).add(
        JobRecord(
            iteration=iteration,
            node_id=iteration,
            slot=0,
            run_dir=str(run_dir),
            config_path=str(folder / "config.yaml"),
            launcher="local",
            command=command,
        )
    )
    return command


def test_driver_killed_before_starting_the_job_gets_it_started_once(tmp_path):
    journal_row_without_handle(tmp_path, 1, "sleep", 0.2)
    run_driver_to_the_end(tmp_path, [[1, "sleep", 0.2]])
    job = Journal(tmp_path).by_iteration(1)
    assert (job.status, job.attempts, starts(tmp_path, 1)) == ("done", 1, 1)


def test_driver_killed_before_recording_the_pid_gets_the_running_job_attached(tmp_path):
    command = journal_row_without_handle(tmp_path, 1, "sleep", 1.0)
    runner = subprocess.Popen(
        [sys.executable, "-m", "slots.runner", "--run-dir", str(tmp_path / "iter_1"), "--", *command],
        start_new_session=True,
    )
    wait_for((tmp_path / "iter_1" / RUNNER_INFO).exists)
    run_driver_to_the_end(tmp_path, [[1, "sleep", 1.0]])
    runner.wait()
    job = Journal(tmp_path).by_iteration(1)
    assert (job.status, job.attempts, starts(tmp_path, 1)) == ("done", 1, 1)
    assert job.external_id == str(runner.pid)

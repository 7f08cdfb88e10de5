"""Restart semantics: a driver process really killed with SIGKILL, then a new one.

The driver below is the loop an agent runs, reduced to the slots/ calls: take the
folder lock, `recover`, submit the iterations not yet in the journal, `refresh`
until all have finished. Each job appends to its starts.txt, so a launch made
twice is seen. Nothing here waits a guessed time: a driver is killed at a named
crash point (`memory.crash`, UCBX_CRASH_AT) or once it has said "submitted", and a
job that must still run when something is checked is a gate job (tests/gate_job.py)
that ends only when the test releases it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from waiting import GATE_JOB, release, wait_for

from memory.crash import ENV, EXIT
from slots.journal import JobRecord, Journal
from slots.runner import EXIT_STATUS, RUNNER_INFO, process_start

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


def start_driver(folder: Path, plan: list, job: Path = JOB, crash_at: str = "") -> subprocess.Popen:
    """The driver on ``folder`` running ``plan`` ([iteration, mode, seconds] of ``job``); ``crash_at``: POINT:COUNT."""
    (folder / "config.yaml").write_text("training:\n  lr: 0.1\n")
    env = {key: value for key, value in os.environ.items() if key != ENV}
    if crash_at:
        env[ENV] = crash_at
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(folder), str(job), json.dumps(plan)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def run_driver_to_the_end(folder: Path, plan: list, job: Path = JOB) -> None:
    driver = start_driver(folder, plan, job)
    driver.communicate(timeout=120)
    assert driver.returncode == 0


def kill_driver(driver: subprocess.Popen) -> None:
    driver.kill()  # SIGKILL: no cleanup of any kind
    driver.wait()


def starts(folder: Path, iteration: int) -> int:
    path = folder / f"iter_{iteration}" / "starts.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


def kill_job_and_runner(folder: Path, iteration: int) -> None:
    """What a reboot does to a job: its runner and its process group vanish."""
    path = folder / f"iter_{iteration}" / RUNNER_INFO
    wait_for(path.exists, 60, f"{path} to be written")
    info = json.loads(path.read_text())
    for pid in (info["pid"], info["child_pid"]):
        os.killpg(pid, signal.SIGKILL)
    wait_for(
        lambda: process_start(info["pid"]) is None and process_start(info["child_pid"]) is None,
        30,
        "the killed runner and job to be gone",
    )


def test_running_job_is_reattached_and_finished_one_is_collected(tmp_path):
    plan = [[1, "gate", 300], [2, "gate", 300]]
    driver = start_driver(tmp_path, plan, GATE_JOB)
    assert driver.stdout.readline().strip() == "submitted"
    before = {r.iteration: r for r in Journal(tmp_path).jobs()}
    kill_driver(driver)
    release(tmp_path / "iter_1")  # job 1 finishes with nobody watching, job 2 goes on running
    wait_for((tmp_path / "iter_1" / EXIT_STATUS).exists, 60, "job 1 to finish")
    assert process_start(int(before[2].external_id)) == before[2].process_start  # still running

    second = start_driver(tmp_path, plan, GATE_JOB)
    assert second.stdout.readline().strip() == "submitted"  # recovered: job 1 collected, job 2 re-attached
    recovered = {r.iteration: r for r in Journal(tmp_path).jobs()}
    assert (recovered[1].status, recovered[2].status) == ("done", "running")
    assert (recovered[2].external_id, recovered[2].attempts) == (before[2].external_id, 1)
    release(tmp_path / "iter_2")
    second.communicate(timeout=120)
    assert second.returncode == 0

    after = {r.iteration: r for r in Journal(tmp_path).jobs()}
    assert set(after) == {1, 2}
    assert all(job.status == "done" and job.attempts == 1 for job in after.values())
    assert after[2].external_id == before[2].external_id
    assert starts(tmp_path, 1) == starts(tmp_path, 2) == 1


# every moment of the submissions of three jobs where a driver can die: each submission's
# row written but no runner started, runner started but its pid not recorded; then after
# all three were submitted, and after the first finished job was recorded
KILLS = [
    *[f"{point}:{count}" for count in (1, 2, 3) for point in ("launch.after-row", "launch.after-start")],
    "submitted",
    "collect.after-finish:1",
]


def test_driver_killed_at_any_moment_launches_nothing_twice_and_loses_nothing(tmp_path):
    plan = [[1, "ok", 0], [2, "ok", 0], [3, "ok", 0]]
    for round_, kill in enumerate(KILLS):
        folder = tmp_path / f"round_{round_}"
        folder.mkdir()
        if kill == "submitted":
            driver = start_driver(folder, plan)
            assert driver.stdout.readline().strip() == "submitted"
            kill_driver(driver)
        else:
            driver = start_driver(folder, plan, crash_at=kill)
            driver.communicate(timeout=120)
            assert driver.returncode == EXIT, f"the driver never reached {kill} (exit {driver.returncode})"
            point, _, count = kill.partition(":")
            if point == "launch.after-start":  # the runner it started outlives it: let it write its runner.json
                info = folder / f"iter_{count}" / RUNNER_INFO
                wait_for(info.exists, 60, f"the orphan runner to write {info}")
        run_driver_to_the_end(folder, plan)
        jobs = Journal(folder).jobs()
        assert [job.iteration for job in jobs] == [1, 2, 3], f"killed at {kill}"
        assert all(job.status == "done" and job.attempts == 1 for job in jobs), f"killed at {kill}: {jobs}"
        assert [starts(folder, i) for i in (1, 2, 3)] == [1, 1, 1], f"killed at {kill}"


def test_runner_started_before_the_driver_died_is_attached_before_it_writes_runner_json(tmp_path):
    """The driver dies right after starting a runner (launch.after-start); the new driver comes
    up before the runner has written runner.json (the file is taken away to hold that moment):
    the live runner is found by its command line and attached, not started a second time,
    with the time its process started (not the moment it was found)."""
    plan = [[1, "gate", 300]]
    driver = start_driver(tmp_path, plan, GATE_JOB, crash_at="launch.after-start:1")
    driver.communicate(timeout=120)
    assert driver.returncode == EXIT
    info = tmp_path / "iter_1" / RUNNER_INFO
    wait_for(lambda: starts(tmp_path, 1) == 1 and info.exists(), 60, "the orphan runner to start its job")
    runner = json.loads(info.read_text())
    runner_pid = runner["pid"]
    info.unlink()

    second = start_driver(tmp_path, plan, GATE_JOB)
    try:
        assert second.stdout.readline().strip() == "submitted"
        job = Journal(tmp_path).by_iteration(1)
        assert (job.status, job.attempts, job.external_id) == ("running", 1, str(runner_pid))
        tick = 0.02  # /proc counts a process's start in clock ticks (10 ms)
        assert job.submitted_at - tick <= job.started_at <= runner["started_at"] + tick
    finally:  # however the checks end, the job finishes and the driver with it
        release(tmp_path / "iter_1")
    second.communicate(timeout=120)
    assert second.returncode == 0
    job = Journal(tmp_path).by_iteration(1)
    assert (job.status, job.attempts) == ("done", 1)
    assert starts(tmp_path, 1) == 1


def test_job_that_died_with_the_driver_is_run_once_more_then_reported_lost(tmp_path):
    plan = [[1, "gate", 300]]  # never released: it runs until it is killed
    driver = start_driver(tmp_path, plan, GATE_JOB)
    assert driver.stdout.readline().strip() == "submitted"
    wait_for(lambda: starts(tmp_path, 1) == 1, 60, "the job to start")
    kill_driver(driver)
    kill_job_and_runner(tmp_path, 1)

    second = start_driver(tmp_path, plan, GATE_JOB)
    assert second.stdout.readline().strip() == "submitted"
    job = Journal(tmp_path).by_iteration(1)
    assert (job.status, job.attempts) == ("running", 2)
    assert job.reason.startswith("attempt 1: lost: runner pid ") and job.reason.endswith("; relaunched")
    assert (tmp_path / "iter_1" / "attempt_1" / "exit_status.json").exists() is False
    assert (tmp_path / "iter_1" / "attempt_1" / "stdout.txt").exists()
    wait_for(lambda: starts(tmp_path, 1) == 2, 60, "the second attempt to start")
    kill_driver(second)
    kill_job_and_runner(tmp_path, 1)

    run_driver_to_the_end(tmp_path, plan, GATE_JOB)
    job = Journal(tmp_path).by_iteration(1)
    assert (job.status, job.failure_kind, job.attempts) == ("failed", "lost", 2)
    assert job.reason == f"runner pid {job.external_id} ended without writing exit_status.json"
    assert starts(tmp_path, 1) == 2


def journal_row_without_handle(folder: Path, iteration: int, mode: str, seconds: float, job: Path = JOB) -> list[str]:
    """The row a driver killed inside `submit` leaves: written, but no pid recorded yet."""
    run_dir = folder / f"iter_{iteration}"
    run_dir.mkdir(parents=True)
    command = [sys.executable, str(job), str(run_dir), mode, str(seconds)]
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
    command = journal_row_without_handle(tmp_path, 1, "gate", 300, GATE_JOB)
    runner = subprocess.Popen(
        [sys.executable, "-m", "slots.runner", "--run-dir", str(tmp_path / "iter_1"), "--", *command],
        start_new_session=True,
    )
    try:
        wait_for((tmp_path / "iter_1" / RUNNER_INFO).exists, 60, "the runner to write runner.json")
        driver = start_driver(tmp_path, [[1, "gate", 300]], GATE_JOB)
        assert driver.stdout.readline().strip() == "submitted"  # recovered, the job still running
        job = Journal(tmp_path).by_iteration(1)
        assert (job.status, job.attempts, job.external_id) == ("running", 1, str(runner.pid))
        release(tmp_path / "iter_1")
        driver.communicate(timeout=120)
        assert driver.returncode == 0
    finally:
        release(tmp_path / "iter_1")
        runner.wait(timeout=120)
    job = Journal(tmp_path).by_iteration(1)
    assert (job.status, job.attempts, starts(tmp_path, 1)) == ("done", 1, 1)
    assert job.external_id == str(runner.pid)

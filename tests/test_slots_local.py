"""The local launcher and the run judge, with real processes (tests/slots_job.py)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from waiting import GATE_JOB, release, wait_for

from slots.journal import Journal
from slots.launcher import JobRequest, format_command, make_launcher
from slots.outcome import JobState, classify_run
from slots.runner import process_start

JOB = Path(__file__).with_name("slots_job.py")


class Bench:
    """An exploration folder with a journal, a local launcher and one config file."""

    def __init__(self, folder: Path, **options):
        self.folder = folder
        self.journal = Journal(folder)
        self.launcher = make_launcher("local", {"grace_s": 1, **options}, folder)
        self.config = folder / "config.yaml"
        self.config.write_text("training:\n  lr: 0.1\n")

    def run_dir(self, iteration: int) -> Path:
        return self.folder / "iterations" / f"iter_{iteration:04d}"

    def submit(self, iteration: int, mode: str, seconds: float = 0, slot: int = 0):
        """Run slots_job.py MODE SECONDS (or, for mode ``gate``, gate_job.py: it ends once released)."""
        job = GATE_JOB if mode == "gate" else JOB
        request = JobRequest(
            iteration=iteration,
            node_id=iteration,
            slot=slot,
            parent=None,
            config_path=self.config,
            run_dir=self.run_dir(iteration),
            command=["{python}", str(job), "{run_dir}", mode, str(seconds)],
            payload={"mode": mode},
        )
        return self.launcher.submit(request, self.journal)

    def wait(self, limit: float = 60):
        deadline = time.monotonic() + limit
        while self.journal.jobs(status=("queued", "running")):
            assert time.monotonic() < deadline, "jobs did not finish in time"
            self.launcher.refresh(self.journal)
            time.sleep(0.05)
        return {r.iteration: r for r in self.journal.jobs()}


@pytest.fixture
def bench(tmp_path):
    return Bench(tmp_path)


def test_success_is_recorded_with_handle_outputs_and_times(bench):
    submitted = bench.submit(1, "ok")
    assert submitted.status == "running" and submitted.attempts == 1
    assert submitted.external_id and submitted.process_start == process_start(int(submitted.external_id))
    assert submitted.command[0] == sys.executable and submitted.command[2] == str(bench.run_dir(1))
    assert len(submitted.config_hash) == 12
    job = bench.wait()[1]
    assert (job.status, job.failure_kind, job.exit_code) == ("done", None, 0)
    assert job.finished_at >= job.started_at >= job.submitted_at
    run_dir = bench.run_dir(1)
    assert (run_dir / "stdout.txt").read_text() == f"job ok in {run_dir}\n"
    assert json.loads((run_dir / "exit_status.json").read_text())["exit_code"] == 0


@pytest.mark.parametrize(
    "mode, kind, reason",
    [
        ("crash", "crash", "exit code 1: ValueError: boom in phase 2"),
        ("nan", "diverged", "nan in loss"),
        ("diverged", "diverged", "diverged: 1"),
        ("no-metrics", "crash", "exit 0 without analysis.log"),
        ("oom", "oom", "exit code 1: MemoryError: could not allocate the embedding table"),
        ("sigkill", "crash", "killed by SIGKILL"),
    ],
)
def test_failures_get_their_kind_and_reason(bench, mode, kind, reason):
    bench.submit(1, mode)
    job = bench.wait()[1]
    assert (job.status, job.failure_kind, job.reason) == ("failed", kind, reason)
    if mode == "crash":
        assert job.stderr_tail.splitlines()[0] == "Traceback (most recent call last):"
        assert job.exit_code == 1


def test_timeout_kills_the_whole_process_group(tmp_path):
    # the job sleeps 300 s: only the runner's timeout can end it before the wait's bound
    bench = Bench(tmp_path, timeout_s=2.0)
    bench.submit(1, "tree")
    job = bench.wait(limit=120)[1]
    assert (job.status, job.failure_kind, job.reason) == ("failed", "timeout", "wall-clock timeout of 2 s")
    status = json.loads((bench.run_dir(1) / "exit_status.json").read_text())
    assert status["finished_at"] - status["started_at"] >= 2.0, status  # not ended before its time
    pid_file = bench.run_dir(1) / "grandchild.pid"
    assert pid_file.exists(), "the job was ended before it started its grandchild: nothing was checked"
    grandchild = int(pid_file.read_text())
    wait_for(lambda: process_start(grandchild) is None, 30, f"the job's grandchild {grandchild} to be killed")


def test_several_slots_run_at_once(bench):
    # gate jobs cannot end before they are released: four of them seen started means four at once
    for slot in range(4):
        bench.submit(slot + 1, "gate", seconds=120, slot=slot)
    running = bench.journal.jobs(status="running")
    assert len(running) == 4 and len({r.external_id for r in running}) == 4
    for iteration in range(1, 5):
        wait_for(lambda i=iteration: (bench.run_dir(i) / "starts.txt").exists(), 60, f"job {iteration} to start")
    assert all(process_start(int(r.external_id)) == r.process_start for r in running), "a job ended before all ran"
    for iteration in range(1, 5):
        release(bench.run_dir(iteration))
    jobs = bench.wait(limit=60)
    assert all(job.status == "done" for job in jobs.values()), jobs


def test_thread_caps_and_gpus_round_robin_reach_the_child(tmp_path):
    bench = Bench(tmp_path, threads_per_job=2, gpus=[0, 1])
    for slot in range(3):
        bench.submit(slot + 1, "ok", slot=slot)
    bench.wait()
    seen = [json.loads((bench.run_dir(i) / "env.json").read_text()) for i in (1, 2, 3)]
    assert [env["CUDA_VISIBLE_DEVICES"] for env in seen] == ["0", "1", "0"]
    assert all(env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "2" for env in seen)


def test_no_gpus_leaves_cuda_visible_devices_alone(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    bench = Bench(tmp_path, gpus="none")
    bench.submit(1, "ok")
    bench.wait()
    env = json.loads((bench.run_dir(1) / "env.json").read_text())
    assert env["CUDA_VISIBLE_DEVICES"] is None and env["OMP_NUM_THREADS"] == "1"


def test_cancel_ends_the_job_as_cancelled(bench):
    job = bench.submit(1, "tree")
    pid_file = bench.run_dir(1) / "grandchild.pid"
    wait_for(pid_file.exists, 60, "the job to start its grandchild")
    bench.launcher.cancel(job)
    job = bench.wait()[1]
    assert (job.status, job.failure_kind, job.reason) == ("failed", "cancelled", "terminated by SIGTERM (cancelled)")
    grandchild = int(pid_file.read_text())
    wait_for(lambda: process_start(grandchild) is None, 30, f"the job's grandchild {grandchild} to be killed")


def test_a_missing_program_is_a_crash_with_the_reason(bench):
    request = JobRequest(1, 1, 0, None, bench.config, bench.run_dir(1), ["no-such-trainer-exists", "{config}"])
    bench.launcher.submit(request, bench.journal)
    job = bench.wait()[1]
    assert (job.status, job.failure_kind) == ("failed", "crash")
    assert job.reason == "exit code 127: ucbx runner: cannot start 'no-such-trainer-exists': No such file or directory"


def test_placeholders_fill_whole_arguments_and_nothing_is_shell_expanded(tmp_path):
    command = ["{python}", "-c", "x", "--config={config}", "$HOME; rm -rf {run_dir}", "*"]
    assert format_command(command, tmp_path / "c.yaml", tmp_path / "r") == [
        sys.executable,
        "-c",
        "x",
        f"--config={tmp_path / 'c.yaml'}",
        f"$HOME; rm -rf {tmp_path / 'r'}",
        "*",
    ]


def test_poll_of_a_finished_record_returns_the_stored_state(bench):
    bench.submit(1, "nan")
    job = bench.wait()[1]
    assert bench.launcher.poll(job) == JobState("failed", "diverged", 0, "nan in loss")


def write_metrics(run_dir: Path, name: str, text: str) -> None:
    run_dir.mkdir(exist_ok=True)
    (run_dir / name).write_text(text)


def test_classify_run_reads_jsonl_metrics_and_oom_hints(tmp_path):
    write_metrics(tmp_path, "metrics.jsonl", '{"step": 1, "loss": 2.0}\n{"step": 2, "loss": "NaN"}\n')
    assert classify_run(tmp_path, 0, None, "metrics.jsonl") == JobState("failed", "diverged", 0, "nan in loss")
    write_metrics(tmp_path, "metrics.jsonl", '{"step": 2, "loss": 0.5, "note": "fine"}\n')
    assert classify_run(tmp_path, 0, None, "metrics.jsonl") == JobState("done", None, 0)
    write_metrics(tmp_path, "analysis.log", "phase: two\n")
    assert classify_run(tmp_path, 0, None) == JobState("failed", "crash", 0, "exit 0 with no metric in analysis.log")
    write_metrics(tmp_path, "stderr.txt", "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2 GiB\n")
    assert classify_run(tmp_path, 1, None).failure_kind == "oom"
    assert classify_run(tmp_path, None, 9) == JobState("failed", "oom", None, "killed by SIGKILL (out of memory)")
    write_metrics(tmp_path, "stderr.txt", "")
    assert classify_run(tmp_path, None, "SIGKILL", oom_killed=True).failure_kind == "oom"
    assert classify_run(tmp_path, None, "SIGSEGV") == JobState("failed", "crash", None, "killed by SIGSEGV")

"""The SLURM launcher against a real single-node SLURM (scripts/slurm-local.sh up).

Skipped, with the reason, when no SLURM answers; with UCBX_REQUIRE_SLURM=1 (CI) a
missing SLURM fails instead. The fixture does not start SLURM itself (that installs
packages and starts daemons as root): run `scripts/slurm-local.sh up` first.

The time-limit job needs SLURM's one-minute granularity (~65 s here), so it is
submitted when the module starts and checked near the end, while the other tests
run on the node's second CPU. The node-failure test takes the node down and must
run last; it runs only on the SLURM of scripts/slurm-local.sh, never on a real cluster.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from slurm_helpers import local_slurm_conf, require_slurm
from slurm_helpers import slurm_problem as slurm_problem  # re-exported: tests/reliability imports it from here
from waiting import GATE_JOB, release

from slots.journal import JobRecord, Journal
from slots.launcher import JobRequest, make_launcher
from slots.outcome import JobState
from slots.slurm import (
    AccountingUnavailable,
    JobStateReader,
    SlurmJob,
    SlurmLauncher,
    parse_sacct,
    parse_scontrol,
    read_accounting,
    read_completion_log,
    read_controller,
)

REPO = Path(__file__).resolve().parents[1]
JOB = Path(__file__).with_name("slots_job.py")
FAST_POLL = {"poll_s": 0.2, "poll_max_s": 1.0, "grace_s": 2}
# every state source: sacct where the cluster has accounting, else scontrol / the completion log
STATE_SOURCES = pytest.mark.parametrize("accounting", ["auto", False], ids=["auto", "no-sacct"])


@pytest.fixture(scope="module")
def slurm():
    require_slurm()
    return os.environ["SLURM_CONF"]


class Bench:
    """An exploration folder with a journal, a SLURM launcher and one config file."""

    def __init__(self, folder: Path, **options):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.options = {**FAST_POLL, **options}
        self.journal = Journal(folder)
        self.launcher = make_launcher("slurm", self.options, folder)
        self.config = folder / "config.yaml"
        self.config.write_text("training:\n  lr: 0.1\n")

    def run_dir(self, iteration: int) -> Path:
        return self.folder / f"iter_{iteration}"

    def submit(self, iteration: int, mode: str, seconds: float = 0) -> JobRecord:
        """Run slots_job.py MODE SECONDS (or, for mode ``gate``, gate_job.py: it ends once released)."""
        job = GATE_JOB if mode == "gate" else JOB
        request = JobRequest(
            iteration,
            iteration,
            0,
            None,
            self.config,
            self.run_dir(iteration),
            ["{python}", str(job), "{run_dir}", mode, str(seconds)],
        )
        return self.launcher.submit(request, self.journal)

    def wait(self, iteration: int, limit: float = 60, until=lambda job: job.finished) -> JobRecord:
        deadline = time.monotonic() + limit
        while not until(job := self.journal.by_iteration(iteration)):
            assert time.monotonic() < deadline, f"iteration {iteration} still {job.status} after {limit} s"
            self.launcher.refresh(self.journal)
            time.sleep(0.1)
        return job

    def starts(self, iteration: int) -> int:
        path = self.run_dir(iteration) / "starts.txt"
        return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture(scope="module")
def time_limit_bench(slurm, tmp_path_factory):
    """A job that SLURM ends at its one-minute time limit; submitted first, checked late."""
    bench = Bench(tmp_path_factory.mktemp("slurm_time_limit"), time_min=1)
    bench.submit(1, "sleep", 600)
    return bench


@pytest.mark.slurm
def test_time_limit_job_is_submitted_first(time_limit_bench):
    assert time_limit_bench.journal.by_iteration(1).external_id.isdigit()


@pytest.mark.slurm
@STATE_SOURCES
def test_submit_records_the_job_id_before_returning_and_completes(slurm, tmp_path, accounting):
    bench = Bench(tmp_path, accounting=accounting)
    submitted = bench.submit(1, "ok")
    stored = Journal(tmp_path).by_iteration(1)
    assert submitted.external_id.isdigit() and stored.external_id == submitted.external_id
    assert (stored.status, stored.attempts, stored.launcher) == ("queued", 1, "slurm")
    script = (bench.run_dir(1) / "job.sbatch").read_text()
    assert script.startswith(f"#!{sys.executable}\n") and "os.execv" in script
    job = bench.wait(1)
    assert (job.status, job.failure_kind, job.exit_code) == ("done", None, 0)
    assert bench.starts(1) == 1


@pytest.mark.slurm
@STATE_SOURCES
def test_failing_job_is_a_crash_with_stderr(slurm, tmp_path, accounting):
    bench = Bench(tmp_path, accounting=accounting)
    bench.submit(1, "crash")
    job = bench.wait(1)
    assert (job.status, job.failure_kind, job.exit_code) == ("failed", "crash", 1)
    assert job.reason == "exit code 1: ValueError: boom in phase 2"
    assert "Traceback" in job.stderr_tail


@pytest.mark.slurm
def test_nan_metrics_under_slurm_are_diverged(slurm, tmp_path):
    bench = Bench(tmp_path)
    bench.submit(1, "nan")
    assert bench.wait(1).failure_kind == "diverged"


@pytest.mark.slurm
def test_wall_clock_timeout_inside_the_job(slurm, tmp_path):
    bench = Bench(tmp_path, timeout_s=2)
    bench.submit(1, "sleep", 300)
    job = bench.wait(1)
    assert (job.status, job.failure_kind, job.reason) == ("failed", "timeout", "wall-clock timeout of 2 s")


@pytest.mark.slurm
@STATE_SOURCES
def test_cancel(slurm, tmp_path, accounting):
    bench = Bench(tmp_path, accounting=accounting)
    job = bench.submit(1, "sleep", 300)
    bench.wait(1, until=lambda job: bench.starts(1) == 1)
    bench.launcher.cancel(job)
    job = bench.wait(1)
    assert (job.status, job.failure_kind) == ("failed", "cancelled")
    assert job.reason.startswith("SLURM CANCELLED")


@pytest.mark.slurm
@STATE_SOURCES
def test_fresh_launcher_reattaches_by_job_id_from_the_journal_alone(slurm, tmp_path, accounting):
    bench = Bench(tmp_path, accounting=accounting)
    submitted = bench.submit(1, "gate", 300)  # runs until released: still SLURM's when the new launcher looks
    bench.journal.close()
    del bench.launcher, bench.journal

    journal = Journal(tmp_path)
    launcher = make_launcher("slurm", bench.options, tmp_path)
    try:
        recovered = launcher.recover(journal)
        assert [(job.iteration, job.external_id, job.attempts) for job in recovered] == [(1, submitted.external_id, 1)]
        assert not recovered[0].finished
    finally:
        release(bench.run_dir(1))
    bench.journal, bench.launcher = journal, launcher
    job = bench.wait(1)
    assert (job.status, job.external_id, bench.starts(1)) == ("done", submitted.external_id, 1)


@pytest.mark.slurm
def test_job_submitted_just_before_a_crash_is_found_by_name(slurm, tmp_path):
    bench = Bench(tmp_path)
    run_dir = bench.run_dir(1)
    run_dir.mkdir()
    row = bench.journal.add(
        JobRecord(
            iteration=1,
            node_id=1,
            slot=0,
            config_path=str(bench.config),
            run_dir=str(run_dir),
            launcher="slurm",
            command=[sys.executable, str(JOB), str(run_dir), "ok"],
        )
    )
    launcher: SlurmLauncher = bench.launcher
    script = launcher.write_script(row)  # what the killed driver did: sbatch, then nothing
    sbatch = subprocess.run(
        ["sbatch", "--parsable", *launcher.sbatch_arguments(row), str(script)],
        capture_output=True,
        text=True,
        check=True,
    )
    recovered = make_launcher("slurm", FAST_POLL, tmp_path).recover(bench.journal)
    assert recovered[0].external_id == sbatch.stdout.strip().split(";")[0]
    job = bench.wait(1)
    assert (job.status, job.attempts, bench.starts(1)) == ("done", 1, 1)


@pytest.mark.slurm
def test_refused_submission_is_retried_then_an_infrastructure_failure(slurm, tmp_path):
    bench = Bench(tmp_path, mem_gb=10_000_000, max_retries=1)
    submitted = bench.submit(1, "ok")
    assert (submitted.status, submitted.external_id, submitted.launch_failures) == ("queued", "", 1)
    assert submitted.reason.startswith("sbatch failed: ")
    job = bench.wait(1)
    assert (job.status, job.failure_kind, job.attempts, job.launch_failures) == ("failed", "infrastructure", 0, 2)
    assert job.reason.startswith("could not be started: sbatch failed: ")


@pytest.mark.slurm
def test_time_limit_ends_the_job_as_timeout(time_limit_bench):
    job = time_limit_bench.wait(1, limit=150)
    assert (job.status, job.failure_kind, job.reason) == ("failed", "timeout", "SLURM TIMEOUT")


@pytest.mark.slurm
def test_node_failure_is_resubmitted_without_penalty(slurm, tmp_path):
    if slurm != local_slurm_conf():
        pytest.skip("takes a node down: only on the SLURM of scripts/slurm-local.sh")
    bench = Bench(tmp_path, extra_args=["--no-requeue"])
    first = bench.submit(1, "gate", 300)  # held until released: it cannot end before the node goes down
    bench.wait(1, until=lambda job: bench.starts(1) == 1)
    node = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True).stdout.split()[0]
    subprocess.run(["scontrol", "update", f"nodename={node}", "state=down", "reason=ucbx-test"], check=True)
    try:
        job = bench.wait(1, until=lambda job: job.attempts == 2)
        assert job.reason.startswith("attempt 1: infrastructure: SLURM NODE_FAIL")
        assert job.external_id != first.external_id
    finally:
        release(bench.run_dir(1))  # the second attempt may finish (and a failed test holds no job)
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"], capture_output=True)
    job = bench.wait(1)
    assert (job.status, job.attempts, bench.starts(1)) == ("done", 2, 2)
    assert (bench.run_dir(1) / "attempt_1" / "stdout.txt").exists()


@pytest.mark.parametrize(
    "state, expected",
    [
        (SlurmJob("PENDING"), JobState("queued")),
        (SlurmJob("RUNNING"), JobState("running")),
        (SlurmJob("COMPLETING"), JobState("running")),
        (SlurmJob("TIMEOUT", 0, 15), JobState("failed", "timeout", 0, "SLURM TIMEOUT")),
        (SlurmJob("OUT_OF_MEMORY", 0, 9), JobState("failed", "oom", 0, "SLURM OUT_OF_MEMORY")),
        (SlurmJob("NODE_FAIL", 0, 15), JobState("failed", "infrastructure", 0, "SLURM NODE_FAIL")),
        (SlurmJob("PREEMPTED", 0, 15), JobState("failed", "infrastructure", 0, "SLURM PREEMPTED")),
        (SlurmJob("CANCELLED by 0", 0, 15), JobState("failed", "cancelled", 0, "SLURM CANCELLED by 0")),
        (SlurmJob("FAILED", 2, 0), JobState("failed", "crash", 2, "exit code 2")),
        (SlurmJob("COMPLETED", 0, 0), JobState("failed", "crash", 0, "exit 0 without analysis.log")),
        (None, JobState("failed", "lost", None, "SLURM job 42 is unknown to SLURM")),
    ],
)
def test_slurm_states_map_to_job_states(tmp_path, state, expected):
    launcher = SlurmLauncher({}, tmp_path)
    record = JobRecord(
        iteration=1, node_id=1, slot=0, config_path="c.yaml", run_dir=str(tmp_path), launcher="slurm", external_id="42"
    )
    assert launcher._judge(record, state) == expected


def test_state_lines_of_sacct_and_scontrol_are_read():
    sacct = "41|COMPLETED|0:0\n42|CANCELLED by 0|0:15\n42.batch|CANCELLED|0:15\n"
    assert parse_sacct("42", sacct) == SlurmJob("CANCELLED by 0", 0, 15)
    assert parse_sacct("43", sacct) is None
    scontrol = "JobId=7 JobName=wrap JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0 RunTime=00:00:01"
    assert parse_scontrol(scontrol) == SlurmJob("FAILED", 3, 0)


def cluster_has_accounting() -> bool:
    return subprocess.run(["sacct", "-n", "-X", "-j", "1"], capture_output=True).returncode == 0


@pytest.mark.slurm
def test_every_state_source_reads_a_finished_job(slurm, tmp_path):
    bench = Bench(tmp_path)
    job_id = bench.submit(1, "crash").external_id
    bench.wait(1)
    assert read_controller(job_id) == SlurmJob("FAILED", 1, 0)
    assert read_completion_log(job_id) == SlurmJob("FAILED", 1, 0)
    assert read_controller("999999999") is None and read_completion_log("999999999") is None
    reader = JobStateReader("auto")
    assert reader.read(job_id) == SlurmJob("FAILED", 1, 0)
    if cluster_has_accounting():
        deadline = time.monotonic() + 30  # slurmdbd records asynchronously
        while (job := read_accounting(job_id)) is None or job.state != "FAILED":
            assert time.monotonic() < deadline, f"sacct still has {job} for job {job_id}"
            time.sleep(0.2)
        assert job == SlurmJob("FAILED", 1, 0)
        assert reader.accounting is True
    else:
        with pytest.raises(AccountingUnavailable) as error:
            read_accounting(job_id)
        assert error.value.disabled and reader.accounting is False

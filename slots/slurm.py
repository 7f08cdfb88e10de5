"""`SlurmLauncher`: the same jobs, submitted through SLURM with a thin `sbatch` wrapper.

Each attempt writes `run_dir/job.sbatch`, a Python script (no shell) that execs
`slots.runner` with the job's argument list, and submits it with `sbatch --parsable`;
every SLURM option is an argument of that call. The job id goes into the journal
before `submit` returns. Job names are `ucbx-<row tag>-i<iteration>-a<attempt>-t<try>`
(the tag hashes the folder and the row's submission time; ``try`` = refused submissions
so far + 1, since SLURM keeps a FAILED record even of a refused one), so a driver
killed between `sbatch` and the journal write finds its job by name, and no other.

Job state is read from accounting (`sacct`) where the cluster has it, otherwise from
the controller (`scontrol show job`, which keeps a finished job for MinJobAge), then
from the job-completion log (`sacct --completion`); see `JobStateReader`. A job
unknown to all three is ``lost``. SLURM's final states map to failure kinds: TIMEOUT/DEADLINE -> timeout,
OUT_OF_MEMORY -> oom, NODE_FAIL/PREEMPTED/BOOT_FAIL -> infrastructure (resubmitted
up to ``max_retries`` times), CANCELLED -> cancelled; COMPLETED and FAILED are
judged from the runner's `exit_status.json` like local jobs.

Options (the spec's ``launcher`` section), besides those of `Launcher`: ``partition``,
``gpus_per_job`` (``--gres=gpu:N``), ``cpus_per_job``, ``mem_gb``, ``time_min`` (default:
``timeout_s`` rounded up to minutes, plus one so the runner's own timeout ends the job
first), ``threads_per_job`` (default ``cpus_per_job``), ``extra_args``
(a list of further sbatch arguments), ``accounting`` (``auto``, true or false: whether
to ask `sacct`), ``poll_s`` (default 10) and ``poll_max_s`` (default 120): a job whose
state does not change is queried less and less often.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memory.crash import crash_point
from memory.errors import UcbxError
from slots.journal import JobRecord, Journal
from slots.launcher import Launcher, archive_attempt, stored_state
from slots.outcome import JobState, classify_run, outcome_from_exit_status
from slots.runner import SLURM_OUT

QUEUED_STATES = {"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD", "CONFIGURING"}
RUNNING_STATES = {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "STOPPED", "SUSPENDED", "RESIZING"}
FAILURE_STATES = {
    "TIMEOUT": "timeout",
    "DEADLINE": "timeout",
    "OUT_OF_MEMORY": "oom",
    "NODE_FAIL": "infrastructure",
    "PREEMPTED": "infrastructure",
    "BOOT_FAIL": "infrastructure",
    "CANCELLED": "cancelled",
    "REVOKED": "lost",
    "SPECIAL_EXIT": "crash",
}
COMMAND_TIMEOUT_S = 60
SACCT_FIELDS = ("-n", "-P", "-o", "JobID,State,ExitCode")


class SlurmUnavailable(UcbxError):
    """The SLURM controller did not answer; the job's state is unknown for now."""


@dataclass(frozen=True)
class SlurmJob:
    """What SLURM says about a job: its state word and `ExitCode` (code:signal)."""

    state: str
    exit_code: int | None = None
    signal: int | None = None

    @property
    def base_state(self) -> str:
        """``CANCELLED`` for ``CANCELLED by 0`` or ``CANCELLED+``."""
        return self.state.split()[0].rstrip("+") if self.state else ""


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return subprocess.CompletedProcess(argv, 255, "", f"{argv[0]}: {error}")


def _parse_exit_code(text: str) -> tuple[int | None, int | None]:
    code, _, signal = text.partition(":")
    try:
        return int(code), int(signal or 0)
    except ValueError:
        return None, None


def parse_sacct(job_id: str, text: str) -> SlurmJob | None:
    """The row of ``job_id`` in `sacct -P -o JobID,State,ExitCode` output."""
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) >= 3 and fields[0] == job_id:
            return SlurmJob(fields[1], *_parse_exit_code(fields[2]))
    return None


def parse_scontrol(text: str) -> SlurmJob:
    """A job from one line of `scontrol show job -o`."""
    fields = dict(re.findall(r"(\w+)=(\S*)", text))
    return SlurmJob(fields.get("JobState", ""), *_parse_exit_code(fields.get("ExitCode", "")))


class AccountingUnavailable(UcbxError):
    """`sacct` failed: no accounting on this cluster (`disabled`), or slurmdbd does not answer."""

    @property
    def disabled(self) -> bool:
        return "accounting storage is disabled" in str(self).lower()


def read_accounting(job_id: str) -> SlurmJob | None:
    """The job as `sacct` has it; None when accounting has no row for it (yet)."""
    result = _run(["sacct", "-X", *SACCT_FIELDS, "-j", job_id])
    if result.returncode != 0:
        raise AccountingUnavailable(f"sacct: {result.stderr.strip() or 'failed'}")
    return parse_sacct(job_id, result.stdout)


def read_controller(job_id: str) -> SlurmJob | None:
    """The job as slurmctld has it; None once it has forgotten the job (after MinJobAge)."""
    result = _run(["scontrol", "show", "job", "-o", job_id])
    if result.returncode == 0:
        return parse_scontrol(result.stdout)
    if "invalid job id" in result.stderr.lower():
        return None
    raise SlurmUnavailable(f"scontrol show job {job_id}: {result.stderr.strip() or 'no answer'}")


def read_completion_log(job_id: str) -> SlurmJob | None:
    """The job as the job-completion log (`sacct --completion`) has it, if it is there."""
    result = _run(["sacct", "--completion", *SACCT_FIELDS, "-j", job_id])
    return parse_sacct(job_id, result.stdout) if result.returncode == 0 else None


class JobStateReader:
    """Reads job states from accounting where it exists, else from the controller, else the log.

    ``accounting``: ``auto`` (try `sacct`; once it says accounting is disabled, stop
    asking it), ``True`` or ``False`` (never ask `sacct`, e.g. where it lags or misleads).
    """

    def __init__(self, accounting: bool | str = "auto"):
        self.accounting: bool | None = None if accounting == "auto" else bool(accounting)
        self.auto = accounting == "auto"

    def read(self, job_id: str) -> SlurmJob | None:
        """SLURM's view of the job, None if no source knows it; SlurmUnavailable if slurmctld is down."""
        if self.accounting is not False:
            try:
                job = read_accounting(job_id)
                self.accounting = True
                if job is not None:
                    return job  # else: not in accounting yet (a fresh job); ask the controller
            except AccountingUnavailable as error:
                if self.auto and error.disabled:
                    self.accounting = False
        return read_controller(job_id) or read_completion_log(job_id)


@dataclass
class _PollCache:
    state: JobState
    interval: float
    next_at: float


class SlurmLauncher(Launcher):
    """Submits jobs with sbatch and follows them by job id."""

    kind = "slurm"

    def __init__(self, options: Mapping[str, Any], folder: str | os.PathLike):
        super().__init__(options, folder)
        self.threads = int(self.options.get("threads_per_job") or self.options.get("cpus_per_job") or 1)
        self.poll_s = float(self.options.get("poll_s", 10))
        self.poll_max_s = float(self.options.get("poll_max_s", 120))
        self.states = JobStateReader(self.options.get("accounting", "auto"))
        self._cache: dict[str, _PollCache] = {}

    def job_name(self, record: JobRecord) -> str:
        """The name of the next submission of ``record``'s job."""
        tag = hashlib.sha1(f"{self.folder.resolve()}:{record.submitted_at!r}".encode()).hexdigest()[:8]
        return f"ucbx-{tag}-i{record.iteration}-a{record.attempts + 1}-t{record.launch_failures + 1}"

    def _time_limit_min(self) -> int | None:
        if self.options.get("time_min"):
            return int(self.options["time_min"])
        return math.ceil(self.timeout_s / 60) + 1 if self.timeout_s else None

    def sbatch_arguments(self, record: JobRecord) -> list[str]:
        """The sbatch options of the next submission, from the spec's launcher section."""
        options = self.options
        arguments = [
            f"--job-name={self.job_name(record)}",
            f"--output={Path(record.run_dir) / SLURM_OUT}",
            f"--chdir={os.getcwd()}",
        ]
        if options.get("partition"):
            arguments.append(f"--partition={options['partition']}")
        if options.get("cpus_per_job"):
            arguments.append(f"--cpus-per-task={int(options['cpus_per_job'])}")
        if options.get("mem_gb"):
            arguments.append(f"--mem={math.ceil(float(options['mem_gb']) * 1024)}M")
        if options.get("gpus_per_job"):
            arguments.append(f"--gres=gpu:{int(options['gpus_per_job'])}")
        if self._time_limit_min():
            arguments.append(f"--time={self._time_limit_min()}")
        return arguments + [str(argument) for argument in options.get("extra_args") or ()]

    def write_script(self, record: JobRecord) -> Path:
        """`run_dir/job.sbatch`: a Python batch script that execs the runner (no shell)."""
        argv = self.runner_argv(record)
        script = Path(record.run_dir) / "job.sbatch"
        script.write_text(
            f"#!{sys.executable}\n"
            f'"""ucbx job: iteration {record.iteration}, node {record.node_id}, slot {record.slot}."""\n'
            "import os\n"
            f"argv = {json.dumps(argv)}\n"
            "os.execv(argv[0], argv)\n",
            encoding="utf-8",
        )
        script.chmod(0o755)
        return script

    def _launch(self, record: JobRecord, journal: Journal) -> JobRecord:
        if record.attempts:
            archive_attempt(record)
        attempt = record.attempts + 1
        argv = ["sbatch", "--parsable", *self.sbatch_arguments(record), str(self.write_script(record))]
        result = _run(argv)
        job_id = result.stdout.strip().split(";")[0]
        if result.returncode != 0 or not job_id.isdigit():
            message = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
            return journal.update(
                record.id, launch_failures=record.launch_failures + 1, reason=f"sbatch failed: {message}"
            )
        crash_point("launch.after-start")
        return journal.update(
            record.id,
            external_id=job_id,
            status="queued",
            attempts=attempt,
            launch_failures=0,
            failure_kind=None,
            exit_code=None,
        )

    def _find_orphan(self, record: JobRecord, journal: Journal) -> JobRecord:
        """A job submitted just before the driver died is found by its name."""
        result = _run(["squeue", "-h", "-t", "all", "-n", self.job_name(record), "-o", "%i"])
        job_ids = result.stdout.split() if result.returncode == 0 else []
        if not job_ids:
            return record
        return journal.update(
            record.id, external_id=job_ids[0], status="queued", attempts=record.attempts + 1, launch_failures=0
        )

    def poll(self, record: JobRecord) -> JobState:
        """The job's state; SLURM is asked at most every ``poll_s``, less often while nothing changes."""
        if record.finished:
            return stored_state(record)
        if not record.external_id:
            return JobState("queued")
        cached = self._cache.get(record.external_id)
        now = time.monotonic()
        if cached is not None and now < cached.next_at:
            return cached.state
        try:
            state = self._judge(record, self.states.read(record.external_id))
        except SlurmUnavailable:
            state = cached.state if cached else stored_state(record)
        unchanged = cached is not None and cached.state == state
        interval = min(cached.interval * 1.5, self.poll_max_s) if unchanged else self.poll_s
        self._cache[record.external_id] = _PollCache(state, interval, now + interval)
        return state

    def _judge(self, record: JobRecord, job: SlurmJob | None) -> JobState:
        if job is None:
            return JobState("failed", "lost", None, f"SLURM job {record.external_id} is unknown to SLURM")
        state = job.base_state
        if state in QUEUED_STATES:
            return JobState("queued")
        if state in RUNNING_STATES or not state:
            return JobState("running")
        if state in FAILURE_STATES:
            return JobState("failed", FAILURE_STATES[state], job.exit_code, f"SLURM {job.state}")
        judged = outcome_from_exit_status(record.run_dir, record.metrics_file)
        if judged is not None:
            return judged
        return classify_run(record.run_dir, job.exit_code, job.signal or None, record.metrics_file)

    def cancel(self, record: JobRecord) -> None:
        if record.external_id:
            _run(["scancel", record.external_id])
            self._cache.pop(record.external_id, None)

"""The launcher interface: turn "run this config in slot S" into a job and know its fate.

A `Launcher` starts jobs (`submit`), looks at them (`poll`), stops them (`cancel`),
and keeps the journal true (`refresh` while running, `recover` once at start). The
journal row of a job is written before the job starts and carries the launcher's
handle (pid or SLURM job id) before `submit` returns, so a driver killed at any
moment can be replaced by one that re-attaches instead of launching again.

Every job runs under `slots.runner`, which writes `exit_status.json` into its run
dir; `slots.outcome` turns that, stderr and the metrics file into a `JobState`.

Implementations: `slots.local.LocalLauncher` (``local``), `slots.slurm.SlurmLauncher`
(``slurm``). Build one with `make_launcher(kind, options, folder)`.
"""

from __future__ import annotations

import abc
import os
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memory.crash import crash_point
from memory.errors import ConfigError
from memory.progress import PROGRESS_NAME, ProgressRead, read_run_progress
from slots.config import config_hash, load_config
from slots.journal import IN_FLIGHT, JobRecord, Journal
from slots.outcome import JobState, classify_run, read_exit_status, stderr_tail
from slots.runner import EXIT_STATUS, RUNNER_INFO, SLURM_OUT, STDERR, STDOUT

__all__ = ["JobRequest", "JobState", "Launcher", "classify_run", "make_launcher"]


@dataclass
class JobRequest:
    """What the agent asks for: run ``command`` for ``iteration`` with the config at ``config_path``.

    ``command`` is an argument list; ``{config}``, ``{run_dir}`` and ``{python}``
    (this interpreter) are replaced inside each item, never split or given to a shell.
    Paths are made absolute when the job is recorded. ``config_path`` must exist
    (its `config_hash` is recorded).
    """

    iteration: int
    node_id: int
    slot: int
    parent: int | None
    config_path: str | os.PathLike
    run_dir: str | os.PathLike
    command: list[str]
    payload: dict[str, Any] = field(default_factory=dict)
    metrics_file: str = "analysis.log"


def format_command(command: list[str], config_path: Path, run_dir: Path) -> list[str]:
    """``command`` with the placeholders replaced in every argument."""
    values = {"{config}": str(config_path), "{run_dir}": str(run_dir), "{python}": sys.executable}
    formatted = []
    for argument in command:
        for placeholder, value in values.items():
            argument = argument.replace(placeholder, value)
        formatted.append(argument)
    return formatted


def archive_attempt(record: JobRecord) -> None:
    """Move the files of ``record``'s last attempt (runner's and metrics) into ``run_dir/attempt_N/``."""
    run_dir = Path(record.run_dir)
    target = run_dir / f"attempt_{record.attempts}"
    for name in (STDOUT, STDERR, EXIT_STATUS, RUNNER_INFO, SLURM_OUT, PROGRESS_NAME, record.metrics_file):
        if (run_dir / name).exists():
            target.mkdir(exist_ok=True)
            shutil.move(run_dir / name, target / name)


class Launcher(abc.ABC):
    """Starts jobs, reads their state, and keeps the journal of an exploration folder true.

    One driver owns a folder at a time (`slots.lock.FolderLock`); a launcher assumes it
    is the only writer of the journal rows whose ``launcher`` is its ``kind``.
    ``options`` is the spec's ``launcher`` section; shared keys: ``timeout_s`` (the runner's
    wall-clock limit; none when absent or 0), ``grace_s`` (SIGTERM to SIGKILL, default 10),
    ``max_retries`` (default 2), which bounds the resubmissions of infrastructure failures
    and the refused launches in a row. A job lost with its driver (no trace of
    how it ended) is run once more, then reported ``lost``.
    """

    kind: str = ""

    def __init__(self, options: Mapping[str, Any], folder: str | os.PathLike):
        self.options = dict(options)
        self.folder = Path(folder)
        self.max_retries = int(self.options.get("max_retries", 2))
        self.timeout_s = float(self.options.get("timeout_s") or 0) or None
        self.grace_s = float(self.options.get("grace_s", 10))
        self.threads = 1

    def runner_argv(self, record: JobRecord) -> list[str]:
        """The argument list that runs ``record``'s command under `slots.runner`."""
        argv = [
            sys.executable,
            "-m",
            "slots.runner",
            "--run-dir",
            record.run_dir,
            "--grace",
            str(self.grace_s),
            "--threads",
            str(self.threads),
        ]
        if self.timeout_s:
            argv += ["--timeout", str(self.timeout_s)]
        return argv + ["--", *record.command]

    def submit(self, request: JobRequest, journal: Journal) -> JobRecord:
        """Record the job in the journal and start it; the returned record has its handle.

        Called by the driver for each free slot. Raises UcbxError if the iteration is
        already in the journal (nothing is started then). A launch that fails is left
        ``queued`` with the reason; `refresh` tries again.
        """
        run_dir = Path(request.run_dir).absolute()
        config_path = Path(request.config_path).absolute()
        run_dir.mkdir(parents=True, exist_ok=True)
        record = journal.add(
            JobRecord(
                iteration=request.iteration,
                node_id=request.node_id,
                slot=request.slot,
                parent=request.parent,
                config_path=str(config_path),
                config_hash=config_hash(load_config(config_path)),
                run_dir=str(run_dir),
                launcher=self.kind,
                command=format_command(request.command, config_path, run_dir),
                metrics_file=request.metrics_file,
                payload=request.payload,
            )
        )
        crash_point("launch.after-row")
        return self._launch(record, journal)

    @abc.abstractmethod
    def _launch(self, record: JobRecord, journal: Journal) -> JobRecord:
        """Start one attempt of the job of ``record`` and store its handle; the stored record.

        Increments ``attempts`` (or, if the launch is refused, ``launch_failures``, with the
        reason). The previous attempt's runner files are archived first.
        """

    @abc.abstractmethod
    def poll(self, record: JobRecord) -> JobState:
        """The job's current state; non-blocking, writes nothing (see `refresh`).

        May be called at any time for any record of this launcher; a finished record
        gets its stored state back.
        """

    @abc.abstractmethod
    def cancel(self, record: JobRecord) -> None:
        """Ask the job to stop (SIGTERM / scancel), without waiting.

        The job then ends as ``failed`` with kind ``cancelled``, seen by the next `refresh`.
        """

    def progress(self, record: JobRecord) -> ProgressRead:
        """What the job said while it trains (memory/progress.py), read from its run folder: the same for
        every launcher, since a SLURM job's run folder is on the filesystem the driver shares."""
        return read_run_progress(record.run_dir, record.metrics_file)

    def stop(self, record: JobRecord, journal: Journal, kind: str, reason: str, numbers: dict[str, Any]) -> JobRecord:
        """End a running job for the agent's own reason (``kind`` ``pruned``): the decision and ``numbers``
        go into the journal first, then the job is asked to end (`cancel`), then that is recorded.

        Exact across restarts: a job whose stop is recorded is never decided again; one whose end was
        not yet asked for (a crash between the two writes) is asked now, once. The job then finishes
        ``failed`` with failure kind ``kind`` and ``reason`` (`refresh`); one that finished on its own
        before the stop reached it keeps its own outcome.
        """
        if not record.stop:
            stop = {"kind": kind, "reason": reason, "decided_at": time.time(), **numbers}
            record = journal.update(record.id, stop=stop)
            crash_point("prune.after-decision")
        if "asked_at" not in record.stop:
            self.cancel(record)
            crash_point("prune.after-kill")
            record = journal.update(record.id, stop={**record.stop, "asked_at": time.time()})
        return record

    def _find_orphan(self, record: JobRecord, journal: Journal) -> JobRecord:
        """A row without handle may belong to a job started just before a crash: attach it."""
        return record

    def refresh(self, journal: Journal) -> list[JobRecord]:
        """Poll every queued or running job of this launcher and write what changed.

        Called by the driver in its loop. Finished jobs get status, failure kind,
        reason, exit code, stderr tail and ``finished_at``; infrastructure failures and
        lost jobs are relaunched within their retry budget (same row, ``attempts`` + 1).
        Returns the records that finished during this call.
        """
        finished = []
        for record in journal.jobs(status=IN_FLIGHT):
            if record.launcher != self.kind:
                continue
            if not record.external_id:
                record = self._find_orphan(record, journal)
            if not record.external_id:
                record = self._retry_launch(record, journal)
                if record.finished:
                    finished.append(record)
                continue
            state = self.poll(record)
            if state.status == "failed" and record.stop:
                state = JobState("failed", record.stop["kind"], state.exit_code, record.stop["reason"])
            if state.status == "failed" and not record.stop and self._may_retry(record, state):
                self._relaunch(record, journal, state)
            elif state.finished:
                finished.append(self._finish(record, journal, state))
            elif state.status != record.status:
                journal.update(record.id, status=state.status, started_at=record.started_at or time.time())
        return finished

    def recover(self, journal: Journal) -> list[JobRecord]:
        """Called once when a driver starts: bring every unfinished job of the journal back.

        Running jobs are re-attached (local: same pid and process start time; SLURM: by
        job id), jobs that finished while no driver watched are collected, jobs that
        died with the driver are run once more, rows whose start was interrupted are
        attached to the job if it exists, else started. Returns those jobs as they are now.
        """
        in_flight = [r.id for r in journal.jobs(status=IN_FLIGHT) if r.launcher == self.kind]
        self.refresh(journal)
        return [journal.get(job_id) for job_id in in_flight]

    def _may_retry(self, record: JobRecord, state: JobState) -> bool:
        """Infrastructure failures get ``max_retries`` more attempts, a lost job one more."""
        retries = {"infrastructure": self.max_retries, "lost": 1}.get(state.failure_kind or "", 0)
        return record.attempts <= retries

    def _relaunch(self, record: JobRecord, journal: Journal, state: JobState) -> JobRecord:
        if state.failure_kind == "lost":
            self.cancel(record)  # whatever is left of it must not run beside the new attempt
        note = f"attempt {record.attempts}: {state.failure_kind}: {state.reason}; relaunched"
        record = journal.update(record.id, reason=note, status="queued", external_id="", process_start="")
        return self._launch(record, journal)

    def _retry_launch(self, record: JobRecord, journal: Journal) -> JobRecord:
        """Start a row that has no job yet, unless its launches keep failing."""
        if record.launch_failures > self.max_retries:
            return self._finish(
                record, journal, JobState("failed", "infrastructure", None, f"could not be started: {record.reason}")
            )
        return self._launch(record, journal)

    def _finish(self, record: JobRecord, journal: Journal, state: JobState) -> JobRecord:
        exit_status = read_exit_status(record.run_dir) or {}
        finished = journal.update(
            record.id,
            status=state.status,
            failure_kind=state.failure_kind,
            exit_code=state.exit_code,
            reason=state.reason,
            stderr_tail=stderr_tail(record.run_dir, (STDERR, SLURM_OUT)),
            finished_at=exit_status.get("finished_at") or time.time(),
        )
        crash_point("collect.after-finish")
        return finished


def stored_state(record: JobRecord) -> JobState:
    """The state a journal record already holds."""
    return JobState(record.status, record.failure_kind, record.exit_code, record.reason)


def make_launcher(kind: str, options: Mapping[str, Any], folder: str | os.PathLike) -> Launcher:
    """The launcher named ``kind`` (``local`` or ``slurm``) for exploration folder ``folder``."""
    if kind == "local":
        from slots.local import LocalLauncher

        return LocalLauncher(options, folder)
    if kind == "slurm":
        from slots.slurm import SlurmLauncher

        return SlurmLauncher(options, folder)
    raise ConfigError(f"launcher.kind: {kind!r} is not one of ['local', 'slurm']")

"""`LocalLauncher`: jobs as processes on this machine.

Each job is `python -m slots.runner ... -- COMMAND` started in a new session (its own
process group, untouched by a Ctrl-C or the death of the driver). The runner
enforces the hard wall-clock timeout by killing the job's process group, caps
torch/OpenMP/BLAS threads, and writes stdout, stderr and `exit_status.json` into the
run dir. Slots get GPUs round-robin through CUDA_VISIBLE_DEVICES where GPUs exist
(several slots may share one).

Options (the spec's ``launcher`` section), besides those of `Launcher`:
``threads_per_job`` (default 1), ``gpus`` (``auto`` = the GPUs this machine shows, ``none``, or a list of ids).

A job's handle is the runner's pid plus its start time from /proc, so after a
restart a live runner is re-attached and a recycled pid is never mistaken for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from memory.crash import crash_point
from slots.journal import JobRecord, Journal
from slots.launcher import Launcher, archive_attempt, stored_state
from slots.outcome import JobState, outcome_from_exit_status
from slots.runner import RUNNER_INFO, process_start, unix_time_of


def detect_gpus() -> list[str]:
    """GPU ids visible here: CUDA_VISIBLE_DEVICES if set, else the NVIDIA driver's list."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [gpu for gpu in visible.split(",") if gpu.strip() and gpu.strip() != "-1"]
    driver = Path("/proc/driver/nvidia/gpus")
    if driver.is_dir():
        return [str(index) for index, _ in enumerate(sorted(driver.iterdir()))]
    if shutil.which("nvidia-smi"):
        result = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
        return [str(index) for index, line in enumerate(result.stdout.splitlines()) if line.startswith("GPU")]
    return []


def _gpu_list(option: Any) -> list[str]:
    if option in (None, "none", False):
        return []
    if option == "auto":
        return detect_gpus()
    return [str(gpu) for gpu in option]


def _alive(pid: int, start: str) -> bool:
    return bool(start) and process_start(pid) == start


def _signal_group(pid: int, start: str, signum: int) -> None:
    """Signal the process group led by ``pid`` if that process is still the one started then."""
    if _alive(pid, start):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signum)


def _runner_info(record: JobRecord) -> dict[str, Any] | None:
    """The run dir's runner.json if this attempt's runner wrote it (not an earlier attempt's)."""
    try:
        info = json.loads((Path(record.run_dir) / RUNNER_INFO).read_text())
    except (OSError, ValueError):
        return None
    if info.get("started_at", 0) < (record.submitted_at or 0):
        return None
    return info


def _runner_process(run_dir: str) -> dict[str, Any] | None:
    """A live ``slots.runner`` process started for ``run_dir`` (read from /proc), as runner.json would say it
    (``started_at``: the process's own start, a moment before the runner would have written it)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue  # the process ended while we looked
        if "slots.runner" not in argv or "--run-dir" not in argv:
            continue
        where = argv.index("--run-dir") + 1
        if where < len(argv) and argv[where] == run_dir:
            pid = int(cmdline.parent.name)
            start = process_start(pid)
            if start is not None:
                return {"pid": pid, "process_start": start, "started_at": unix_time_of(start)}
    return None


class LocalLauncher(Launcher):
    """Runs jobs as local process groups under `slots.runner`."""

    kind = "local"

    def __init__(self, options: Mapping[str, Any], folder: str | os.PathLike):
        super().__init__(options, folder)
        self.threads = int(self.options.get("threads_per_job", 1))
        self.gpus = _gpu_list(self.options.get("gpus", "auto"))
        self._children: dict[int, subprocess.Popen] = {}

    def _environment(self, slot: int) -> dict[str, str]:
        env = dict(os.environ)
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus[slot % len(self.gpus)]
        return env

    def _launch(self, record: JobRecord, journal: Journal) -> JobRecord:
        run_dir = Path(record.run_dir)
        if record.attempts:
            archive_attempt(record)
        attempt = record.attempts + 1
        try:
            with open(run_dir / "runner.log", "ab") as log:
                child = subprocess.Popen(
                    self.runner_argv(record),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    env=self._environment(record.slot),
                    start_new_session=True,
                )
        except OSError as error:
            return journal.update(
                record.id, launch_failures=record.launch_failures + 1, reason=f"cannot start the runner: {error}"
            )
        self._children[record.id] = child
        crash_point("launch.after-start")
        return journal.update(
            record.id,
            external_id=str(child.pid),
            process_start=process_start(child.pid) or "",
            status="running",
            attempts=attempt,
            launch_failures=0,
            started_at=time.time(),
            failure_kind=None,
            exit_code=None,
        )

    def _find_orphan(self, record: JobRecord, journal: Journal) -> JobRecord:
        """A runner started just before the driver died: attach it.

        Found by its runner.json, or, if it has not written one yet, by its command line
        (a live ``slots.runner`` whose ``--run-dir`` is this job's), so a row whose runner
        is already running is never started a second time.
        """
        found = _runner_info(record) or _runner_process(record.run_dir)
        if found is None:
            return record
        return journal.update(
            record.id,
            external_id=str(found["pid"]),
            process_start=found["process_start"] or "",
            status="running",
            attempts=record.attempts + 1,
            launch_failures=0,
            started_at=found["started_at"],
            failure_kind=None,
            exit_code=None,
        )

    def poll(self, record: JobRecord) -> JobState:
        if record.finished:
            return stored_state(record)
        if not record.external_id:
            return JobState("queued")
        child = self._children.get(record.id)
        if child is not None and child.poll() is not None:
            del self._children[record.id]
        if _alive(int(record.external_id), record.process_start):
            return JobState("running")
        state = outcome_from_exit_status(record.run_dir, record.metrics_file)
        if state is None:
            return JobState(
                "failed", "lost", None, f"runner pid {record.external_id} ended without writing exit_status.json"
            )
        return state

    def cancel(self, record: JobRecord) -> None:
        """SIGTERM the runner (it stops the job's group and records the cancel); if the runner
        is gone, SIGKILL whatever is left of the job's own process group."""
        if record.external_id and _alive(int(record.external_id), record.process_start):
            os.kill(int(record.external_id), signal.SIGTERM)
            return
        try:
            info = json.loads((Path(record.run_dir) / RUNNER_INFO).read_text())
        except (OSError, ValueError):
            return
        if info.get("child_pid"):
            _signal_group(info["child_pid"], info.get("child_start") or "", signal.SIGKILL)

"""What became of a run: its exit status, stderr and metrics file turned into a `JobState`.

Shared by every launcher, so a job is judged the same way whether it ran locally or
under SLURM. The rules:
- killed by a signal: ``oom`` when the kernel's OOM killer is known to have fired or
  stderr says out of memory, else ``crash`` naming the signal;
- non-zero exit: ``oom`` when stderr says out of memory (MemoryError, CUDA out of
  memory), else ``crash`` with the exit code and the last stderr line;
- exit 0 without the metrics file, or with no metric in it: ``crash`` saying so;
- exit 0 with ``diverged`` >= 1 or a nan/inf metric: ``diverged`` naming it;
- otherwise ``done``.
"""

from __future__ import annotations

import json
import math
import signal as signals
from dataclasses import dataclass
from pathlib import Path

from memory.analysis_log import read_metrics
from slots.runner import EXIT_STATUS, STDERR

OOM_MARKERS = ("out of memory", "memoryerror", "outofmemoryerror", "oom-kill", "cannot allocate memory")
_TERMINATING_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP")


@dataclass(frozen=True)
class JobState:
    """A job's status (queued | running | done | failed) and, when failed, the kind and reason."""

    status: str
    failure_kind: str | None = None
    exit_code: int | None = None
    reason: str = ""

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


def stderr_tail(run_dir: str | Path, names: tuple[str, ...] = (STDERR,), lines: int = 20) -> str:
    """The last ``lines`` lines of the first non-empty file of ``names`` in ``run_dir``."""
    for name in names:
        try:
            with open(Path(run_dir) / name, "rb") as handle:
                handle.seek(0, 2)
                handle.seek(max(0, handle.tell() - 16384))
                text = handle.read().decode("utf-8", errors="replace")
        except OSError:
            continue
        if text.strip():
            return "\n".join(text.rstrip().splitlines()[-lines:])
    return ""


def _says_out_of_memory(tail: str) -> bool:
    lowered = tail.lower()
    return any(marker in lowered for marker in OOM_MARKERS)


def _last_line(tail: str) -> str:
    return tail.strip().splitlines()[-1].strip() if tail.strip() else ""


def _signal_name(signal: int | str) -> str:
    return signal if isinstance(signal, str) else signals.Signals(signal).name


def _judge_metrics(run_dir: Path, metrics_file: str) -> JobState:
    path = run_dir / metrics_file
    if not path.is_file():
        return JobState("failed", "crash", 0, f"exit 0 without {metrics_file}")
    values = read_metrics(path)
    if not values:
        return JobState("failed", "crash", 0, f"exit 0 with no metric in {metrics_file}")
    if values.get("diverged", 0.0) >= 1:
        return JobState("failed", "diverged", 0, "diverged: 1")
    bad = [f"{value} in {name}" for name, value in values.items() if not math.isfinite(value)]
    if bad:
        return JobState("failed", "diverged", 0, ", ".join(bad[:3]))
    return JobState("done", None, 0)


def classify_run(
    run_dir: str | Path,
    exit_code: int | None,
    signal: int | str | None,
    metrics_file: str = "analysis.log",
    oom_killed: bool | None = None,
) -> JobState:
    """Judge a run that ended with ``exit_code`` or was killed by ``signal`` (number or name)."""
    run_dir = Path(run_dir)
    tail = stderr_tail(run_dir)
    if signal is not None:
        name = _signal_name(signal)
        if oom_killed or _says_out_of_memory(tail):
            return JobState("failed", "oom", None, f"killed by {name} (out of memory)")
        return JobState("failed", "crash", None, f"killed by {name}")
    if exit_code != 0:
        kind = "oom" if _says_out_of_memory(tail) else "crash"
        last = _last_line(tail)
        return JobState("failed", kind, exit_code, f"exit code {exit_code}" + (f": {last}" if last else ""))
    return _judge_metrics(run_dir, metrics_file)


def read_exit_status(run_dir: str | Path) -> dict | None:
    """The runner's `exit_status.json` in ``run_dir``, or None if it is absent or unreadable."""
    try:
        return json.loads((Path(run_dir) / EXIT_STATUS).read_text())
    except (OSError, ValueError):
        return None


def outcome_from_exit_status(run_dir: str | Path, metrics_file: str) -> JobState | None:
    """Judge a run from the runner's record; None when the runner wrote none."""
    status = read_exit_status(run_dir)
    if status is None:
        return None
    if status.get("timed_out"):
        return JobState("failed", "timeout", None, f"wall-clock timeout of {status['timeout_s']:g} s")
    if status.get("terminated_by") in _TERMINATING_SIGNALS:
        return JobState(
            "failed", "cancelled", status.get("exit_code"), f"terminated by {status['terminated_by']} (cancelled)"
        )
    return classify_run(run_dir, status.get("exit_code"), status.get("signal"), metrics_file, status.get("oom_killed"))

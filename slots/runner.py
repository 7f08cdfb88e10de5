"""The wrapper every job runs under: `python -m slots.runner --run-dir D [options] -- COMMAND...`.

It starts COMMAND (an argument list, never a shell) in its own process group with
stdout and stderr in `D/stdout.txt` and `D/stderr.txt`, caps its threads, enforces
the wall-clock timeout itself (so a job times out even while no driver watches),
and when COMMAND ends writes `D/exit_status.json` atomically: exit code or signal,
whether it timed out or was terminated, and whether the kernel's OOM killer fired.
A driver that restarts reads that file to collect a job that finished without it.
On start it writes `D/runner.json` (its pid and start time, the child's pid) so a
driver killed before recording the pid can still re-attach.

SIGTERM, SIGINT or SIGHUP (a cancel, or SLURM's time limit) terminate the child's
group: SIGTERM, then SIGKILL after the grace period. The runner exits with the
child's exit code (128 + signal number when the child was killed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from memory.atomic import write_text_atomic

EXIT_STATUS = "exit_status.json"
RUNNER_INFO = "runner.json"
STDOUT = "stdout.txt"
STDERR = "stderr.txt"
SLURM_OUT = "slurm.out"  # SLURM's own output of a job (written by slurmstepd, not the runner)
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
_OOM_EVENT_FILES = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")


def process_start(pid: int) -> str | None:
    """Start time of ``pid`` in clock ticks since boot, or None if it is gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def unix_time_of(start: str) -> float:
    """A `process_start` (clock ticks since boot) as a Unix time, to a clock tick.

    Measured back from now through the uptime, not from the boot time /proc/stat gives in
    whole seconds.
    """
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return time.time() - (uptime - int(start) / os.sysconf("SC_CLK_TCK"))


def oom_kills() -> int | None:
    """The kernel's OOM-kill count for this cgroup, or None where it cannot be read."""
    for name in _OOM_EVENT_FILES:
        try:
            for line in Path(name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            continue
    return None


def child_environment(threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    if threads:
        env.update({name: str(threads) for name in THREAD_VARIABLES})
    return env


class Runner:
    """Runs one command to its end and records how it ended."""

    def __init__(self, run_dir: Path, command: list[str], timeout_s: float | None, grace_s: float, threads: int | None):
        self.run_dir = run_dir
        self.command = command
        self.timeout_s = timeout_s
        self.grace_s = grace_s
        self.threads = threads
        self.child: subprocess.Popen | None = None
        self.terminated_by: str | None = None
        self.kill_at: float | None = None

    def on_signal(self, signum: int, _frame: Any) -> None:
        if self.terminated_by is None:
            self.terminated_by = signal.Signals(signum).name
            self.stop_child()

    def stop_child(self) -> None:
        """SIGTERM the child's group now; `wait` sends SIGKILL after the grace period."""
        if self.child is not None:
            self._kill_group(signal.SIGTERM)
            self.kill_at = time.monotonic() + self.grace_s

    def _kill_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.child.pid, signum)

    def start(self) -> None:
        with open(self.run_dir / STDOUT, "wb") as out, open(self.run_dir / STDERR, "wb") as err:
            try:
                self.child = subprocess.Popen(
                    self.command,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=child_environment(self.threads),
                    process_group=0,
                )
            except OSError as error:
                err.write(f"ucbx runner: cannot start {self.command[0]!r}: {error.strerror}\n".encode())

    def wait(self) -> int:
        """Wait for the child, enforcing the timeout; its return code (negative = signal)."""
        deadline = time.monotonic() + self.timeout_s if self.timeout_s else None
        while True:
            try:
                returncode = self.child.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if deadline is not None and now >= deadline and self.terminated_by is None:
                self.terminated_by = "timeout"
            if self.terminated_by is not None and self.kill_at is None:
                self.stop_child()
            elif self.kill_at is not None and now >= self.kill_at:
                self._kill_group(signal.SIGKILL)
        self._kill_group(signal.SIGKILL)  # leftovers of the job's group die with it
        return returncode

    def run(self) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self.on_signal)
        started_at = time.time()
        kills_before = oom_kills()
        self.start()
        write_text_atomic(
            self.run_dir / RUNNER_INFO,
            json.dumps(
                {
                    "pid": os.getpid(),
                    "process_start": process_start(os.getpid()),
                    "child_pid": self.child.pid if self.child else None,
                    "child_start": process_start(self.child.pid) if self.child else None,
                    "started_at": started_at,
                }
            )
            + "\n",
        )
        returncode = self.wait() if self.child else 127
        kills_after = oom_kills()
        status = {
            "exit_code": returncode if returncode >= 0 else None,
            "signal": signal.Signals(-returncode).name if returncode < 0 else None,
            "timed_out": self.terminated_by == "timeout",
            "terminated_by": self.terminated_by,
            "oom_killed": None if kills_before is None or kills_after is None else kills_after > kills_before,
            "timeout_s": self.timeout_s,
            "started_at": started_at,
            "finished_at": time.time(),
        }
        write_text_atomic(self.run_dir / EXIT_STATUS, json.dumps(status) + "\n")
        return returncode if returncode >= 0 else 128 - returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m slots.runner", description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=None, help="wall-clock limit in seconds")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL")
    parser.add_argument("--threads", type=int, default=None, help="thread cap for torch/OpenMP/BLAS")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given after --")
    return Runner(args.run_dir, command, args.timeout, args.grace, args.threads).run()


if __name__ == "__main__":
    sys.exit(main())

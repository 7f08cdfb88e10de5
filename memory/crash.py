"""Crash points: named moments of an iteration where a test may end the process as SIGKILL would.

The reliability suite (tests/reliability/test_restart_kills.py) proves that a daemon
killed at any of these moments loses nothing once restarted. Each moment is marked in
the code with ``crash_point(name)``; it does nothing unless the environment variable
``UCBX_CRASH_AT=name:count`` names it, and then its count-th call in this process ends
the process with ``os._exit(137)``: no cleanup, no flush, no ``finally``. `POINTS` lists
every point with the state it leaves; the suite checks that each one is reached.

This is the bottom layer (memory/), so the launcher (slots/) and the driver (agent/)
can both mark their moments.
"""

from __future__ import annotations

import os
import sys

from memory.errors import UcbxError

ENV = "UCBX_CRASH_AT"
EXIT = 137  # what SIGKILL leaves as an exit status (128 + 9)
POINTS = {
    # launch
    "launch.between-config-and-pending": "the slot config is written, its .pending.json not",
    "launch.before-submit": "the pending config is validated, the launcher not called",
    "launch.after-row": "the journal row is written, the runner not started",
    "launch.after-start": "the runner is started, its pid not recorded",
    "launch.after-submit": "the job is submitted, its .pending.json not removed",
    # collection
    "collect.after-finish": "the launcher recorded a finished job, no entry written",
    # log writing
    "log.entry-built": "the entry is built, where its append begins not recorded",
    "log.before-append": "where the append begins is recorded, nothing appended",
    "log.torn-append": "half the entry is appended (a short write, cut mid-line), then the crash",
    "log.torn-at-line": "the entry's first lines are appended (a short write cut on a line boundary), then the crash",
    "log.after-append": "the entry is appended, the job not marked collected",
    "log.after-collected": "the job is marked collected, memory not written",
    # memory writing
    "memory.before-write": "memory.md about to be rewritten",
    "memory.after-write": "memory.md rewritten, scores not",
    "scores.after-write": "ucb_scores.txt rewritten, no commit",
    # git commit
    "git.before-commit": "the iteration's files about to be committed",
    "git.after-add": "the files are staged (git add), the commit not written (the folder's first commit too)",
    "git.after-commit": "the commit is written, the pass goes on",
}
# moments of stopping a run early (exploration.pruning), reached only by an exploration that prunes:
# tests/test_pruning.py kills the daemon at each (the restart suite above runs without pruning)
PRUNE_POINTS = {
    "prune.after-decision": "the stop and its numbers are in the journal, the job not asked to end",
    "prune.after-kill": "the job is asked to end, its entry not written",
}

_calls: dict[str, int] = {}


def _target() -> tuple[str, int] | None:
    """The point and count named by UCBX_CRASH_AT, or None when unset."""
    value = os.environ.get(ENV, "")
    if not value:
        return None
    point, _, count = value.rpartition(":")
    known = {**POINTS, **PRUNE_POINTS}
    if point not in known or not count.isdigit() or int(count) < 1:
        raise UcbxError(f"{ENV}={value!r}: expected POINT:COUNT with COUNT >= 1 and POINT one of {', '.join(known)}")
    return point, int(count)


def check_environment() -> None:
    """Raise the one-line error of a malformed UCBX_CRASH_AT now (the CLI calls it before writing anything)."""
    _target()


def crash_due(point: str) -> bool:
    """True when this call of ``point`` is the one UCBX_CRASH_AT names (the caller then calls `crash`).

    For a point that leaves partial work behind (a short write) before the crash.
    """
    target = _target()
    if target is None or target[0] != point:
        return False
    _calls[point] = _calls.get(point, 0) + 1
    return _calls[point] == target[1]


def crash() -> None:
    """End the process now, as SIGKILL would: no cleanup, no ``finally``.

    stdout is flushed for the test's transcript.
    """
    sys.stdout.flush()
    os._exit(EXIT)


def crash_point(point: str) -> None:
    """Mark a moment; the process ends here when UCBX_CRASH_AT names it and this is its count-th call."""
    if crash_due(point):
        crash()

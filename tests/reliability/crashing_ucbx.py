"""`ucbx` with a deterministic crash: `python crashing_ucbx.py POINT COUNT ucbx-arguments...`.

The test harness's fault-injection hook (the driver itself has none): before running
`agent.cli.main` it wraps one function the driver calls so that its COUNT-th call
ends the process with ``os._exit(137)`` (what SIGKILL leaves: no cleanup, no flush,
no finally) at POINT. Nothing else is changed: the driver, launcher, journal, git and
trainer are the real ones. POINT is one of `POINTS`, grouped by phase.
"""

from __future__ import annotations

import functools
import os
import sys

import git.index.base

import agent.driver
import memory.notebook
import slots.journal
import slots.launcher
import slots.local
from agent.provenance import Provenance

EXIT = 137
POINTS = {
    # launch
    "launch.before-submit": "Launcher.submit is called (pending file written, no journal row)",
    "launch.after-row": "the journal row is written, the runner not started",
    "launch.after-start": "the runner is started, its pid not recorded",
    "launch.after-submit": "submit returned, the pending file not removed",
    "launch.between-config-and-pending": "the slot config is written, its .pending.json not",
    # collection
    "collect.after-finish": "refresh recorded a finished job, no entry written",
    # log writing
    "log.before-append": "the entry is built, not appended",
    "log.torn-append": "half the entry is appended (a short write), then the crash",
    "log.after-append": "the entry is appended, the job not marked collected",
    "log.after-collected": "the job is marked collected, memory not written",
    # memory writing
    "memory.before-write": "memory.md about to be rewritten",
    "memory.after-write": "memory.md rewritten, scores not",
    "scores.after-write": "ucb_scores.txt rewritten, no commit",
    # git commit
    "git.before-commit": "Provenance.commit is called",
    "git.after-add": "the files are staged (git add), the commit not written",
    "git.after-commit": "the commit is written, the pass goes on",
}


def crash() -> None:
    sys.stdout.flush()
    os._exit(EXIT)


class Counter:
    def __init__(self, point: str, count: int):
        self.point, self.count, self.calls = point, count, 0

    def hit(self, point: str) -> bool:
        if point != self.point:
            return False
        self.calls += 1
        return self.calls == self.count


def install(point: str, count: int) -> None:
    if point not in POINTS:
        raise SystemExit(f"unknown crash point {point!r} (known: {', '.join(POINTS)})")
    counter = Counter(point, count)

    def around(owner, name, before=None, after=None, when=lambda *a, **k: True):
        original = getattr(owner, name)

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            if before and when(*args, **kwargs) and counter.hit(before):
                crash()
            result = original(*args, **kwargs)
            if after and when(*args, **kwargs) and counter.hit(after):
                crash()
            return result
        setattr(owner, name, wrapper)

    around(slots.launcher.Launcher, "submit", before="launch.before-submit", after="launch.after-submit")
    around(slots.journal.Journal, "add", after="launch.after-row")
    original_start = slots.local.process_start

    def process_start(pid):
        if sys._getframe(1).f_code.co_name == "_launch" and counter.hit("launch.after-start"):
            crash()
        return original_start(pid)
    slots.local.process_start = process_start
    around(agent.driver, "write_text_atomic", before="launch.between-config-and-pending",
           when=lambda path, *a, **k: str(path).endswith(agent.driver.PENDING_SUFFIX))
    around(slots.launcher.Launcher, "_finish", after="collect.after-finish")
    around(agent.driver, "append_entry", before="log.before-append", after="log.after-append")
    original_append = agent.driver.append_entry

    def torn_append(path, entry):
        if counter.hit("log.torn-append"):
            text = memory.notebook.format_entry(entry)
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(text[: len(text) // 2])
            crash()
        return original_append(path, entry)
    agent.driver.append_entry = torn_append
    around(slots.journal.Journal, "update", after="log.after-collected",
           when=lambda self, job_id, **fields: fields.get("collected") is True)
    around(agent.driver, "write_memory", before="memory.before-write", after="memory.after-write")
    around(agent.driver, "write_scores", after="scores.after-write")
    around(Provenance, "commit", before="git.before-commit", after="git.after-commit")
    around(git.index.base.IndexFile, "commit", before="git.after-add")


if __name__ == "__main__":
    install(sys.argv[1], int(sys.argv[2]))
    from agent.cli import main
    sys.exit(main(sys.argv[3:]))

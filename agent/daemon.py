"""`ucbx run` (the daemon loop) and `ucbx step` (one pass), each holding the folder's lock.

The daemon refills each slot as soon as it frees, until the budget (or ``iterations``
more entries) is reached. On SIGINT/SIGTERM it stops launching, finishes the pass it is
in, ends local jobs (they are queued again and rerun next time) and leaves SLURM jobs
running (re-attached next time).
"""

from __future__ import annotations

import signal
import threading
import time

from agent.driver import Exploration, Reporter, StepReport
from slots.journal import IN_FLIGHT

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
LOCAL_STOP_WAIT_S = 30.0
LOCAL_STOP_POLL_S = 0.2


def step_once(exploration: Exploration, launch: bool = True, wait: bool = False) -> StepReport:
    """`ucbx step`: under the folder's lock, re-attach, optionally wait for a job to finish, one pass."""
    with exploration.folder.lock():
        exploration.prepare()
        exploration.launcher.recover(exploration.journal)
        journal = exploration.journal
        while wait and journal.jobs(status=IN_FLIGHT) and not exploration.reader.finished_jobs():
            time.sleep(exploration.spec.exploration.poll_s)
            exploration.launcher.refresh(journal)
        return exploration.step(launch=launch)


def run(exploration: Exploration, reporter: Reporter, iterations: int | None = None) -> int:
    """Keep every slot busy until the budget (or ``iterations`` more entries) is reached or a signal comes.

    Returns the number of entries written.
    """
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in STOP_SIGNALS}
    written = 0
    try:
        with exploration.folder.lock():
            exploration.prepare()
            exploration.launcher.recover(exploration.journal)
            start = len(exploration.reader.entries())
            target = start + iterations if iterations is not None else None
            while True:
                report = exploration.step(launch=not stop.is_set(), propose=not stop.is_set(), target=target)
                written += len(report.written)
                reporter.update(exploration, report)
                if stop.is_set() or _finished(exploration, report, target):
                    break
                stop.wait(exploration.spec.exploration.poll_s)
            stop_local_jobs(exploration)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return written


def _finished(exploration: Exploration, report: StepReport, target: int | None) -> bool:
    """True when the target or budget is reached, or nothing runs and nothing more can start."""
    snapshot = report.snapshot
    done = snapshot.entries_written
    if done >= exploration.spec.exploration.budget or (target is not None and done >= target):
        return True
    return len(snapshot.records) == len(snapshot.entries)  # nothing in flight, nothing pending


def stop_local_jobs(exploration: Exploration) -> None:
    """End local jobs and queue them again, so the next start reruns them; SLURM jobs keep running.

    A job the agent stopped (pruned) is not queued again: the next start collects it as stopped.
    """
    if exploration.spec.launcher.kind != "local":
        return
    journal, launcher = exploration.journal, exploration.launcher
    running = [job for job in journal.jobs(status=IN_FLIGHT) if not job.stop]
    for job in running:
        launcher.cancel(job)
    deadline = time.monotonic() + LOCAL_STOP_WAIT_S
    while any(launcher.poll(job).status == "running" for job in running) and time.monotonic() < deadline:
        time.sleep(LOCAL_STOP_POLL_S)
    for job in running:
        journal.update(
            job.id,
            status="queued",
            external_id="",
            process_start="",
            submitted_at=time.time(),
            reason="queued again: the driver stopped",
        )

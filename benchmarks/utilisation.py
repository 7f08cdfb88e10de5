"""Slot utilisation: real jobs through the local launcher, asynchronous loop vs synchronous batches.

Each job is a real process started by `slots.local.LocalLauncher` under `slots.runner`
(a Python process that sleeps ``unit x time_step`` seconds and writes its analysis.log),
so launcher, runner and polling costs are all inside the measurement. Two loops:

- synchronous (the public implementation's): launch one job per slot, wait until the
  slowest is done, launch the next batch; ``rounds`` batches;
- asynchronous (ucbx's): a slot gets its next job as soon as the launcher reports its
  job finished; run over the same wall-clock window the synchronous loop took.

Busy fraction = job run time (launcher start to runner exit, clipped to the window) /
(slots x window). Expected for durations 4:16:32:64: synchronous (4+16+32+64)/(4x64) =
45.3%, asynchronous close to 100% (less the launch and poll latency).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.tasks import TIME_STEPS
from slots.config import write_config
from slots.journal import Journal
from slots.launcher import JobRequest, make_launcher

JOB = "import sys, time; time.sleep(float(sys.argv[1])); open(sys.argv[2] + '/analysis.log', 'w').write('loss: 1\\n')"


@dataclass(frozen=True)
class Utilisation:
    loop: str
    window_s: float
    jobs: int
    busy_fraction: float
    per_slot: tuple[float, ...]


class Bench:
    """A journal and a local launcher in ``folder``, and job bookkeeping."""

    def __init__(self, folder: Path, durations: tuple[float, ...], poll_s: float):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.durations, self.poll_s = folder, durations, poll_s
        self.journal = Journal(folder)
        self.launcher = make_launcher("local", {"threads_per_job": 1, "gpus": "none", "timeout_s": 0}, folder)
        self.count = 0

    def submit(self, slot: int) -> None:
        self.count += 1
        run_dir = self.folder / f"job_{self.count:04d}"
        run_dir.mkdir()
        write_config(run_dir / "config.yaml", {"slot": slot, "seconds": self.durations[slot]})
        self.launcher.submit(
            JobRequest(
                iteration=self.count,
                node_id=self.count,
                slot=slot,
                parent=None,
                config_path=run_dir / "config.yaml",
                run_dir=run_dir,
                command=[sys.executable, "-c", JOB, str(self.durations[slot]), "{run_dir}"],
            ),
            self.journal,
        )

    def finished_slots(self) -> list[int]:
        """Slots whose job the launcher has just seen finish."""
        time.sleep(self.poll_s)
        return [record.slot for record in self.launcher.refresh(self.journal)]

    def running(self) -> list:
        return self.journal.jobs(status=("queued", "running"))

    def stop(self) -> None:
        for record in self.running():
            self.launcher.cancel(record)
        while self.running():
            self.finished_slots()

    def measure(self, loop: str, start: float, end: float) -> Utilisation:
        n = len(self.durations)
        busy = [0.0] * n
        for record in self.journal.jobs():
            stop = min(record.finished_at or end, end)
            busy[record.slot] += max(0.0, stop - max(record.started_at or end, start))
        window = end - start
        return Utilisation(
            loop, window, len(self.journal.jobs()), sum(busy) / (n * window), tuple(b / window for b in busy)
        )


def synchronous(folder: Path, durations: tuple[float, ...], rounds: int, poll_s: float) -> Utilisation:
    bench = Bench(folder, durations, poll_s)
    start = time.time()
    for _ in range(rounds):
        for slot in range(len(durations)):
            bench.submit(slot)
        while bench.running():
            bench.finished_slots()
    return bench.measure("synchronous batch", start, time.time())


def asynchronous(folder: Path, durations: tuple[float, ...], window_s: float, poll_s: float) -> Utilisation:
    bench = Bench(folder, durations, poll_s)
    start = time.time()
    for slot in range(len(durations)):
        bench.submit(slot)
    while time.time() - start < window_s:
        for slot in bench.finished_slots():
            bench.submit(slot)
    end = time.time()
    bench.stop()
    return bench.measure("asynchronous", start, end)


def expected_synchronous(durations: tuple[float, ...]) -> float:
    return sum(durations) / (len(durations) * max(durations))


def run_utilisation(folder: Path, unit_s: float, rounds: int, poll_s: float = 0.2) -> list[Utilisation]:
    """Both loops, durations ``unit_s`` x 4/16/32/64, the asynchronous one over the synchronous one's window."""
    durations = tuple(unit_s * t for t in TIME_STEPS)
    sync = synchronous(folder / "synchronous", durations, rounds, poll_s)
    return [sync, asynchronous(folder / "asynchronous", durations, sync.window_s, poll_s)]


def table(results: list[Utilisation], unit_s: float) -> str:
    durations = tuple(unit_s * t for t in TIME_STEPS)
    lines = [
        f"durations {', '.join(f'{d:g}' for d in durations)} s; ideal synchronous "
        f"{expected_synchronous(durations):.1%}",
        "",
        "| loop | window s | jobs | busy fraction | per slot (time_step 4/16/32/64) |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r.loop} | {r.window_s:.1f} | {r.jobs} | {r.busy_fraction:.1%} | "
            f"{' / '.join(f'{b:.0%}' for b in r.per_slot)} |"
        )
    return "\n".join(lines)

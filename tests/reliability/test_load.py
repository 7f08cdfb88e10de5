"""Load: the cost of a decision as the log grows; a driver that leaks nothing; 32 slots of tiny jobs.

1. One pass of a real driver that collects a finished job (its entry, the memory, the scores, the commit,
   the next proposal and launch) on a log of 1,000 and of 4,000 entries (long: 25,000 and 100,000):
   counted, not timed (a loaded machine changes times, not counts), the larger decision makes at most
   5x the function calls and reaches at most 5x the memory peak of the smaller one (linear work: at most
   4x; work or memory growing with the square of the log: about 16x), and parses no more entries of the
   log (a daemon reads what was appended since its last pass, not the whole log again).
2. Repeated passes of a real daemon loop on one folder (CI: 20 entries, long: 60; real jobs, real git),
   in a process of its own: open files and threads do not grow from pass to pass and are given back with
   the driver; 30 passes with nothing to do leave the process holding what it held before them; once
   the driver is dropped no module keeps anything more; and the objects the driver holds, type by type,
   are no more than a driver freshly opened on the same folder holds (each entry the daemon wrote is held
   once: the tree takes the log reader's parse of it, not the Entry the writer built).
3. A real `ucbx run` with 32 slots of tiny jobs (CI: 150 iterations, long: 3,000):
   the daemon's open files, threads, zombie children and resident memory are sampled
   from /proc while it runs; the late third against the early third: the baseline
   (minimum) of open files +<=2 and their peak +<=8 (a file open for one write is not a
   leak), threads +<=1, peak memory +<=40 MB, zombies never above the slots; no job
   process is left at the end.
"""

from __future__ import annotations

import collections
import cProfile
import gc
import json
import os
import pstats
import random
import re
import subprocess
import sys
import time
import tracemalloc
import urllib.parse
import weakref
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.daemon import run, stop_local_jobs
from agent.driver import Exploration
from agent.folder import ExplorationFolder
from agent.spec import load_spec
from memory import notebook
from memory.notebook import Entry, format_entry

from .harness import (
    LONG,
    REPO,
    check_exploration,
    environment,
    kill_group,
    record_figures,
    start_ucbx,
    wait_for,
    write_spec,
)

BIG = 100_000 if LONG else 4_000  # the longer log of the decision test; the shorter is a quarter of it
LEAK_ITERATIONS = 60 if LONG else 20  # entries written by the driver watched for leaks
SLOTS32_BUDGET = 3000 if LONG else 150


def synthetic_entry(i: int, rng: random.Random) -> Entry:
    parent = None if i <= 2 else rng.randint(max(1, i - 500), i - 1)
    return Entry(
        iteration=i,
        status="partial",
        node_id=i,
        parent=parent,
        mode="exploit",
        slot=i % 2,
        slot_label=f"width={8 * (1 + i % 2)}",
        config={"lr": f"{rng.uniform(1e-4, 1):.3g}", "mom": "0.5", "batch": "16", "opt": "sgd", "seed": "0"},
        metrics={"score": rng.random(), "loss": rng.random()},
        visual="none",
        mutation="lr: 0.05 -> 0.02",
        strategy="hyperparameter-only",
        observation="score 0.4 -> 0.5",
        next_parent=i,
    )


def write_big_log(path: Path, count: int) -> None:
    rng = random.Random(0)
    path.write_text("".join(format_entry(synthetic_entry(i, rng)) for i in range(1, count + 1)))


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def finished(exploration: Exploration) -> bool:
    """True once the launcher has recorded a job ended whose entry is not written yet."""
    exploration.launcher.refresh(exploration.journal)
    return bool(exploration.reader.finished_jobs())


@dataclass(frozen=True)
class DecisionCost:
    entries: int  # entries in the log after the decision
    calls: int  # function calls (Python and built-in) of the pass, as cProfile counts them
    parsed: int  # log entries the pass parsed (read anew from the file)
    peak_bytes: int  # traced memory at the pass's peak, above what was held before it


def one_decision(folder: Path, entries: int) -> DecisionCost:
    """One pass of a real driver on a log of ``entries`` entries that collects one finished job: its entry,
    the memory, the scores and the commit written, the next job proposed and launched; what it cost.

    Operations and memory are counted, not timed: the counts do not depend on how loaded the machine is.
    """
    spec = load_spec(write_spec(folder, slots=1, budget=entries + 10, sleep=0.0))
    runs = folder / "runs"
    runs.mkdir()
    write_big_log(runs / "rel_analysis.md", entries)
    exploration = Exploration(spec, ExplorationFolder(runs, spec.name))
    try:
        exploration.prepare()
        exploration.launcher.recover(exploration.journal)
        assert exploration.step().launched, "no job launched"
        assert wait_for(lambda: finished(exploration), limit=300), "the job never ended"
        gc.collect()
        tracing = tracemalloc.is_tracing()
        if not tracing:
            tracemalloc.start()
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        profile = cProfile.Profile()
        profile.enable()
        try:
            report = exploration.step()
        finally:
            profile.disable()
            peak = tracemalloc.get_traced_memory()[1] - before
            if not tracing:
                tracemalloc.stop()
        assert len(report.written) == 1 and report.launched, report
        stats = pstats.Stats(profile)
        parsed = sum(
            calls
            for (file, _, function), (_, calls, *_) in stats.stats.items()
            if Path(file).match("memory/notebook.py") and function == "_read_entry_body"  # once per entry read
        )
        return DecisionCost(len(exploration.reader.entries()), stats.total_calls, parsed, peak)
    finally:
        stop_local_jobs(exploration)
        exploration.journal.close()


def test_a_decision_on_a_log_four_times_longer_costs_at_most_about_four_times_more(tmp_path):
    """Linear work gives at most 4x (less: part of a decision does not depend on the log); work or memory
    that grows with the square of the log (a tree built by scanning every entry for each one, a model fit
    on every run) gives about 16x. The entries a decision parses do not grow with the log (it reads what was
    appended since the last pass)."""
    small = one_decision(tmp_path / "small", BIG // 4)
    large = one_decision(tmp_path / "large", BIG)
    record_figures(
        "load-scaling",
        entries=[small.entries, large.entries],
        calls=[small.calls, large.calls],
        parsed=[small.parsed, large.parsed],
        peak_mb=[round(small.peak_bytes / 2**20, 1), round(large.peak_bytes / 2**20, 1)],
    )
    assert hasattr(notebook, "_read_entry_body"), "the parser's function was renamed: count its new name"
    assert large.parsed <= small.parsed + 2, (small, large)  # a decision reads what was appended, not the log
    assert large.calls <= 5 * small.calls, (small, large)
    assert large.peak_bytes <= 5 * small.peak_bytes, (small, large)


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def os_threads() -> int:
    """This process's threads, the ones libraries start in C included."""
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


@dataclass(frozen=True)
class Held:
    """What this process held at one moment: traced bytes, and the objects the collector tracks by type."""

    bytes: int
    objects: collections.Counter[str]
    own_bytes: int  # the bytes of ``objects`` itself, held at every later measure while this one is kept


def held() -> Held:
    """What this process holds now (see `held_by_type`)."""
    settle()
    traced = tracemalloc.get_traced_memory()[0]
    objects = count_by_type()
    return Held(traced, objects, tracemalloc.get_traced_memory()[0] - traced)


def growth(before: Held, after: Held) -> dict:
    """Bytes more, and the types with more objects (how many more: a type with fewer is no leak), the
    counter of ``before`` (kept until ``after`` was measured) aside."""
    more = after.objects - before.objects - collections.Counter({"Counter": 1})
    return {"bytes": after.bytes - before.bytes - before.own_bytes, "objects": dict(more)}


def settle() -> None:
    """Garbage collected, and the interpreter's own bounded caches emptied (the types' attribute cache,
    compiled regular expressions, URL splits): they keep what recent calls used, up to their bound."""
    sys._clear_type_cache()
    re.purge()
    urllib.parse.clear_cache()
    gc.collect()


def count_by_type() -> collections.Counter[str]:
    """The objects the collector tracks, by type, weak references aside (a sqlite3 connection keeps dead
    ones to its cursors and prunes them every 200 cursors)."""
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects() if type(o) is not weakref.ref)


def held_by_type() -> collections.Counter[str]:
    settle()
    return count_by_type()


class PassWatcher:
    """A reporter for the daemon loop: after each pass that wrote an entry, the open files and threads."""

    def __init__(self):
        self.samples: list[tuple[int, int, int]] = []  # (entries, open files, threads)

    def say(self, text: str) -> None:
        pass

    def update(self, exploration: Exploration, report) -> None:
        if report.written:
            self.samples.append((len(exploration.reader.entries()), open_files(), os_threads()))


def drive(spec, folder: Path, iterations: int, watcher: PassWatcher | None = None, idle: int = 0) -> dict:
    """A real driver's daemon loop on ``folder`` for ``iterations`` more entries, then passes that launch
    nothing (the first proposes for the free slots, the others find nothing to do): what the process held
    after SETTLE_PASSES of them and after ``idle`` more (bytes, objects), and the objects the driver held at
    the end, by type (what the process gave back once the driver was closed and dropped)."""
    exploration = Exploration(spec, ExplorationFolder(folder, spec.name))
    run(exploration, watcher or PassWatcher(), iterations)
    measured = {}
    if idle:
        for _ in range(SETTLE_PASSES):
            exploration.step(launch=False)
        first = held()
        for _ in range(idle):
            exploration.step(launch=False)
        measured["idle_growth"] = growth(first, held())
        del first
        for pending in exploration.folder.pending_files():  # so the next driver proposes as this one did
            pending.unlink()
    with_it = held_by_type()
    exploration.journal.close()
    del exploration
    measured["held"] = dict(with_it - held_by_type())  # the objects the driver held, by type
    return measured


WARM_UP = 8  # entries before the watch: modules imported, caches filled, the surrogate fitted (from 5 runs)
SETTLE_PASSES = 2  # idle passes before the first measure: the first drops what the last busy pass derived
IDLE_PASSES = 30


def leak_probe(spec_path: str, folder: str, iterations: int) -> dict:
    """The measures of the leak tests, taken in a process of its own, as a daemon runs: no test runner there
    keeps what the driver logs or warns. A warm-up driver; then one watched for ``iterations`` entries and
    IDLE_PASSES passes; then a fresh one for one entry; each on ``folder`` and dropped after its run."""
    spec = load_spec(spec_path)
    tracemalloc.start()
    drive(spec, Path(folder), WARM_UP)
    files, threads = open_files(), os_threads()
    watcher = PassWatcher()
    before = held()
    long_lived = drive(spec, Path(folder), iterations, watcher, idle=IDLE_PASSES)
    after = held()
    fresh = drive(spec, Path(folder), 1)
    return {
        "samples": watcher.samples,
        "files_threads": [files, threads, open_files(), os_threads()],
        "idle_growth": long_lived["idle_growth"],
        "long_lived": long_lived["held"],
        "fresh": fresh["held"],
        "module_growth": growth(before, after),
    }


@pytest.fixture(scope="module")
def leak_measures(tmp_path_factory) -> dict:
    """`leak_probe` run once, for the two leak tests below."""
    root = tmp_path_factory.mktemp("leak")
    spec = write_spec(root, slots=2, budget=10_000, sleep=0.0)
    probe = "import json, sys; from tests.reliability.test_load import leak_probe; "
    probe += "print(json.dumps(leak_probe(sys.argv[1], sys.argv[2], int(sys.argv[3]))))"
    result = subprocess.run(
        [sys.executable, "-c", probe, str(spec), str(root / "runs"), str(LEAK_ITERATIONS)],
        cwd=REPO,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout.splitlines()[-1])
    samples = measured["samples"]
    assert samples and samples[-1][0] == WARM_UP + LEAK_ITERATIONS, samples
    assert len(samples) >= LEAK_ITERATIONS // 2, samples  # two slots: at most two entries a pass
    record_figures(
        "load-driver-leak",
        iterations=LEAK_ITERATIONS,
        passes_sampled=len(samples),
        files=f"{samples[0][1]} -> {samples[-1][1]}",
        threads=f"{samples[0][2]} -> {samples[-1][2]}",
        idle_passes=IDLE_PASSES,
        idle_growth=measured["idle_growth"],
        held_objects=[sum(measured["long_lived"].values()), sum(measured["fresh"].values())],
        module_growth=measured["module_growth"],
    )
    return measured


def test_a_driver_leaks_no_file_thread_or_memory_from_pass_to_pass(leak_measures):
    """Repeated passes of a real daemon loop on one folder (real jobs, real git), in a process of its own:
    the open files and threads do not grow from pass to pass and are given back when the driver is dropped;
    IDLE_PASSES passes with nothing to do leave the process holding no more objects of any type than before
    them (2 of slack) and bytes within 16 KB (a sqlite3 connection's list of weak references to its cursors
    grows by a few a pass until it is pruned, every 200 cursors); once the driver is dropped the modules keep
    nothing more than before it (16 KB, and 5 objects of a type: numpy keeps a few small buffers for reuse).
    Memory and objects are counted, not timed."""
    samples = leak_measures["samples"]
    early, late = samples[: len(samples) // 3], samples[-(len(samples) // 3) :]
    assert max(s[1] for s in late) <= max(s[1] for s in early), samples  # open files
    assert max(s[2] for s in late) <= max(s[2] for s in early), samples  # threads
    files, threads, files_after, threads_after = leak_measures["files_threads"]
    assert (files_after, threads_after) == (files, threads), "a dropped driver left files or threads open"
    idle, modules = leak_measures["idle_growth"], leak_measures["module_growth"]
    assert max(idle["objects"].values(), default=0) <= 2 and idle["bytes"] <= 16 * 1024, idle
    assert max(modules["objects"].values(), default=0) <= 5 and modules["bytes"] <= 16 * 1024, modules


def test_a_driver_after_many_entries_holds_no_more_than_a_fresh_one(leak_measures):
    """The objects the driver holds after LEAK_ITERATIONS entries, type by type, are no more than a driver
    freshly opened on the same folder holds after one entry (both hold the same log), 5 of each aside."""
    long_lived, fresh = leak_measures["long_lived"], leak_measures["fresh"]
    more = {kind: count - fresh.get(kind, 0) for kind, count in long_lived.items() if count > fresh.get(kind, 0) + 5}
    assert not more, more


def watch(daemon, limit_s: float, probe) -> tuple[list, str]:
    """``probe()`` every second while ``daemon`` runs (killed after ``limit_s``): what it returned, and the
    daemon's output once it ended with exit 0. A probe that meets a file or process just gone is skipped."""
    samples = []
    deadline = time.monotonic() + limit_s
    try:
        while daemon.poll() is None and time.monotonic() < deadline:
            try:
                samples.append(probe())
            except (OSError, StopIteration):
                pass
            time.sleep(1.0)
    finally:
        if daemon.poll() is None:
            kill_group(daemon)
    output = daemon.stdout.read()
    assert daemon.returncode == 0, output[-3000:]
    return samples, output


def process_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), fields[0], cmdline)
    return table


def sample(pid: int) -> dict:
    table = process_table()
    status = Path(f"/proc/{pid}/status").read_text()
    threads = int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))
    return {
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": threads,
        "rss_mb": rss_mb(pid),
        "zombies": sum(1 for ppid, state, _ in table.values() if ppid == pid and state == "Z"),
        "children": sum(1 for ppid, _, _ in table.values() if ppid == pid),
    }


def test_32_slots_of_tiny_jobs_leak_no_files_processes_or_memory(tmp_path):
    spec = write_spec(tmp_path, slots=32, budget=SLOTS32_BUDGET, sleep=0.0, poll=0.2)
    folder = tmp_path / "runs"
    daemon = start_ucbx("run", str(spec), "--workdir", str(folder))
    log = folder / "rel_analysis.md"

    def probe():
        text = log.read_text() if log.exists() else ""
        return text.count("\n## Iter ") + text.startswith("## Iter"), sample(daemon.pid)

    samples, _ = watch(daemon, 7200 if LONG else 900, probe)
    counts = check_exploration(folder, SLOTS32_BUDGET)
    running = [cmd for _, _, cmd in process_table().values() if str(folder) in cmd]
    assert not running, running  # no job process left behind
    steady = [s for written, s in samples if SLOTS32_BUDGET * 0.2 <= written <= SLOTS32_BUDGET * 0.95]
    assert len(steady) >= 4, samples
    early, late = steady[: len(steady) // 3], steady[-(len(steady) // 3) :]

    def low(window, key):  # the baseline: a leak raises it; a file open for one write does not
        return min(s[key] for s in window)

    def high(window, key):
        return max(s[key] for s in window)

    record_figures(
        "load-32-slots",
        iterations=counts["entries"],
        slots=32,
        samples=len(samples),
        fds_early=f"{low(early, 'fds')}-{high(early, 'fds')}",
        fds_late=f"{low(late, 'fds')}-{high(late, 'fds')}",
        threads_early=high(early, "threads"),
        threads_late=high(late, "threads"),
        rss_early_mb=round(high(early, "rss_mb"), 1),
        rss_late_mb=round(high(late, "rss_mb"), 1),
        zombies_max=max(s["zombies"] for _, s in samples),
    )
    assert low(late, "fds") - low(early, "fds") <= 2, (early, late)
    assert high(late, "fds") - high(early, "fds") <= 8, (early, late)
    assert low(late, "threads") - low(early, "threads") <= 1, (early, late)
    assert high(late, "rss_mb") - high(early, "rss_mb") <= 40, (early, late)
    assert max(s["zombies"] for _, s in samples) <= 32, samples  # reaped: never more than the slots

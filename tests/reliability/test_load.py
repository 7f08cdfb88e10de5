"""Load: a 100,000-entry log and tree; 32 slots of tiny jobs (no fd, process or memory leak).

1. The layers every decision runs through (parse the log, build the tree, PUCT, write
   the scores, choose the parent) on a log of 100,000 entries (CI: 20,000): one entry is
   appended per decision, and the time and the memory of the late decisions must stay
   those of the early ones (no growth across decisions).
2. The driver itself deciding on the 100,000-entry exploration (long profile only): a real
   `ucbx run --iterations 6`; the late decisions take no longer than the early ones and
   the daemon's memory stays flat.
3. A real `ucbx run` with 32 slots of tiny jobs (CI: 150 iterations, long: 3,000):
   the daemon's open files, threads, zombie children and resident memory are sampled
   from /proc while it runs; the late third against the early third: the baseline
   (minimum) of open files +<=2 and their peak +<=8 (a file open for one write is not a
   leak), threads +<=1, peak memory +<=40 MB, zombies never above the slots; no job
   process is left at the end.
"""

from __future__ import annotations

import gc
import itertools
import os
import random
import statistics
import time
from pathlib import Path

import pytest

from agent.spec import load_spec
from memory.notebook import Entry, append_entry, format_entry, parse_notebook
from ucb.scores import choose_parent, puct, scores_header, total_visits, write_scores
from ucb.tree import Tree

from .harness import (
    LONG,
    check_exploration,
    kill_group,
    record_figures,
    start_ucbx,
    write_spec,
)

BIG = 100_000 if LONG else 20_000
DECISIONS = 20 if LONG else 12
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


def test_decisions_on_a_huge_log_stay_flat_in_time_and_memory(tmp_path):
    spec = load_spec(write_spec(tmp_path))
    log = tmp_path / "rel_analysis.md"
    write_big_log(log, BIG)
    rng = random.Random(1)
    times, memory = [], []
    for _ in range(DECISIONS):
        started = time.perf_counter()
        entries = parse_notebook(log.read_text(), str(log)).entries
        tree = Tree.from_entries(entries, spec.objective)
        ranking = puct(tree, spec.exploration.ucb_c)
        write_scores(
            tmp_path / "rel_ucb_scores.txt",
            ranking,
            tree,
            scores_header(total_visits(tree), spec.exploration.ucb_c, (0, 1, len(entries))),
        )
        parent = choose_parent(ranking)
        append_entry(log, synthetic_entry(len(entries) + 1, rng))
        times.append(time.perf_counter() - started)
        del entries, tree, ranking
        gc.collect()
        memory.append(rss_mb())
        assert parent is not None
    third = max(1, DECISIONS // 3)
    early, late = statistics.median(times[:third]), statistics.median(times[-third:])
    record_figures(
        "load-log",
        entries=BIG,
        decisions=DECISIONS,
        early_s=round(early, 3),
        late_s=round(late, 3),
        rss_early_mb=round(memory[third - 1], 1),
        rss_late_mb=round(memory[-1], 1),
    )
    assert late <= 1.5 * early + 0.5, times  # flat: no growth across decisions
    assert memory[-1] - memory[third - 1] <= 64, memory  # no leak per decision
    assert len(parse_notebook(log.read_text()).entries) == BIG + DECISIONS


@pytest.mark.skipif(not LONG, reason="long profile only (UCBX_RELIABILITY=long): minutes on a 100,000-entry log")
def test_the_driver_decides_on_a_100k_entry_exploration_in_flat_time_and_memory(tmp_path):
    """A real `ucbx run --iterations 6` on a folder whose log holds 100,000 entries."""
    spec = write_spec(tmp_path, budget=100_000 + 50, sleep=0.0)
    folder = tmp_path / "runs"
    folder.mkdir()
    write_big_log(folder / "rel_analysis.md", 100_000)
    daemon = start_ucbx("run", str(spec), "--workdir", str(folder), "--iterations", "6")
    memory, output = watch(daemon, 2400, lambda: rss_mb(daemon.pid))
    stamps = [
        time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
        for line in output.splitlines()
        if " Iter " in line[:30]
    ]
    assert len(stamps) == 6, output[-3000:]
    intervals = [b - a for a, b in itertools.pairwise(stamps)]
    parsed = parse_notebook((folder / "rel_analysis.md").read_text())
    assert len(parsed.entries) == 100_006 and not parsed.problems
    third = max(1, len(memory) // 3)
    record_figures(
        "load-driver-100k",
        entries=100_006,
        decision_intervals_s=intervals,
        rss_early_mb=round(max(memory[:third]), 1),
        rss_late_mb=round(max(memory[-third:]), 1),
    )
    assert max(intervals[-2:]) <= 1.5 * max(intervals[:2]) + 5, intervals
    assert max(memory[-third:]) - max(memory[:third]) <= 150, memory


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

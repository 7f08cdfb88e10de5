"""Shared tools of the reliability suites: a fast real trainer's exploration, the ucbx
processes that run it, the invariants an exploration folder must hold, and the figures.

Everything is real: `ucbx` runs as its own process, the trainer (`fake_trainer.py`) as
jobs under `slots.runner`, files are real files and the folder a real git repository.

``UCBX_RELIABILITY=long`` selects the long profile (more kills, more hypothesis
examples, bigger loads); ``UCBX_RELIABILITY_FIGURES=FILE`` makes every suite append
what it tried and survived to FILE as JSON lines (scripts/reliability.sh sums them).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import git
import yaml

from memory import crash
from memory.notebook import parse_notebook
from memory.working_memory import KNOWN_SECTIONS, read_memory
from slots.journal import Journal

REPO = Path(__file__).resolve().parents[2]
TRAINER = Path(__file__).with_name("fake_trainer.py")
LONG = os.environ.get("UCBX_RELIABILITY", "") == "long"
NAME = "rel"

BASE = {
    "slot": {"width": 8},
    "train": {"lr": 0.05, "momentum": 0.5, "batch": 16, "opt": "sgd", "seed": 0},
    "fault": {"mode": "ok", "sleep": 0.05, "plan": {}},
}

SPEC = """
name: rel
trainer:
  command: ["{python}", "TRAINER", "--config", "{config}", "--run-dir", "{run_dir}"]
  base_config: base.yaml
  seed_key: train.seed
slots:
  key: slot.width
  values: SLOTS
search_space:
  train.lr: {kind: float, low: 1.0e-4, high: 1.0, log: true, short: lr, priority: 1}
  train.momentum: {kind: float, low: 0.0, high: 0.99, short: mom, priority: 2}
  train.batch: {kind: int, low: 4, high: 256, log: true, short: batch, priority: 3}
  train.opt: {kind: choice, choices: [sgd, adam, rmsprop], short: opt, priority: 4}
frozen: [fault]
objective:
  primary: score
  terms:
    - {metric: score, kind: maximize, low: 0.0, high: 1.0}
  bands:
    - {label: converged, low: 0.8, high: 1.01}
    - {label: partial, low: 0.3, high: 0.8}
exploration:
  n_iter_block: 8
  budget: BUDGET
  replicates: 1
  seed: 0
  poll_s: POLL
"""

LOCAL = """launcher:
  kind: local
  timeout_s: TIMEOUT
  grace_s: 1
  gpus: none
"""

SLURM = """launcher:
  kind: slurm
  timeout_s: TIMEOUT
  grace_s: 1
  poll_s: 0.3
  poll_max_s: 1.0
"""


def write_spec(
    folder: Path,
    *,
    slots: int = 2,
    budget: int = 12,
    plan: dict | None = None,
    mode: str = "ok",
    sleep: float = 0.05,
    timeout: float = 60,
    poll: float = 0.1,
    launcher: str = LOCAL,
    command: list[str] | None = None,
    base: dict | None = None,
) -> Path:
    """An exploration spec of the fake trainer in ``folder`` (spec.yaml + base.yaml); its path."""
    folder.mkdir(parents=True, exist_ok=True)
    base = json.loads(json.dumps(base or BASE))
    base["fault"].update({"mode": mode, "sleep": sleep, "plan": dict(plan or {})})
    (folder / "base.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
    values = [8 * (i + 1) for i in range(slots)]
    text = textwrap.dedent(SPEC).replace("TRAINER", str(TRAINER)).replace("SLOTS", json.dumps(values))
    text = text.replace("BUDGET", str(budget)).replace("POLL", str(poll))
    text += textwrap.dedent(launcher).replace("TIMEOUT", str(timeout))
    if command is not None:
        start, end = text.index("  command:"), text.index("\n", text.index("  command:"))
        text = text[:start] + "  command: " + json.dumps(command) + text[end:]
    path = folder / "spec.yaml"
    path.write_text(text)
    return path


def environment(**extra: str) -> dict[str, str]:
    """The environment of a ucbx process: this repository importable, no crash point unless ``extra`` names one."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(crash.ENV, None)
    return {**env, **extra}


def ucbx(*arguments: str, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """`ucbx ARGUMENTS` as its own process, to the end."""
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *arguments],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or environment(),
        check=False,
    )


def start_ucbx(*arguments: str, env: dict | None = None) -> subprocess.Popen:
    """`ucbx ARGUMENTS` started in its own session (so a test can SIGKILL its whole process group)."""
    output = tempfile.NamedTemporaryFile("w+", prefix="ucbx-output-", suffix=".txt", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", *arguments],
        cwd=REPO,
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
        env=env or environment(),
        start_new_session=True,
    )
    output.close()
    # the output goes to a file, never a pipe: a daemon that writes more than a pipe holds
    # while nobody reads would block; `process.stdout.read()` reads the file from its start
    process.stdout = open(output.name, encoding="utf-8", errors="replace")  # noqa: SIM115
    os.unlink(output.name)
    return process


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process and everything in its group (a git child included): no cleanup of any kind."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def wait_for(condition, limit: float = 60, step: float = 0.05) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())


def entries_of(folder: Path):
    log = folder / f"{NAME}_analysis.md"
    return parse_notebook(log.read_text(encoding="utf-8"), str(log)) if log.exists() else None


def starts(run_dir: str | Path) -> int:
    """How many times a job's trainer started in ``run_dir`` (attempt folders included)."""
    run_dir = Path(run_dir)
    return sum(len(p.read_text().split()) for p in [run_dir / "starts.txt"] if p.exists())


def entry_ends(log: bytes, entries: list) -> list[int]:
    """The byte offset where each entry of ``log`` ends (where the next one's header line starts)."""
    line_starts = [0, *itertools.accumulate(len(line) for line in log.splitlines(keepends=True))]
    return [line_starts[following.line - 1] for following in entries[1:]] + [len(log)]


def git_blob_id(content: bytes) -> bytes:
    """The id git gives a file holding ``content`` (its binary sha1)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).digest()


def check_exploration(folder: Path, expected: int | None = None, *, final: bool = True) -> dict:
    """The invariants of an exploration folder; returns a few counts.

    - the log parses with no problem and its entries are Iter 1..N, no gap, no duplicate,
      and node ids are unique;
    - every entry has a journal row (same node, slot, parent) marked collected, whose status
      agrees with the entry (failed rows <-> failed entries, with the failure kind in the entry);
    - every entry has exactly one git commit `Iter N: ...`, whose tree holds the log up to it;
    - no job started twice (starts.txt), except a job lost with its driver and run once more;
    - the memory file has its sections and the scores file lists exactly the finished,
      non-replicate nodes of the log (``final``: nothing in flight any more).
    """
    parsed = entries_of(folder)
    assert parsed is not None, "no analysis log"
    assert not parsed.problems, [str(p) for p in parsed.problems]
    entries = parsed.entries
    n = len(entries)
    if expected is not None:
        assert n == expected, f"{n} entries, expected {expected}"
    assert [e.iteration for e in entries] == list(range(1, n + 1))
    ids = [e.node_id for e in entries]
    assert len(set(ids)) == n, f"duplicate node ids {ids}"

    journal = Journal(folder)
    try:
        jobs = journal.jobs()
    finally:
        journal.close()
    rows = {job.node_id: job for job in jobs}
    assert len(rows) == len(jobs), f"a node id in two journal rows: {sorted(job.node_id for job in jobs)}"
    relaunched = 0
    for entry in entries:
        job = rows.get(entry.node_id)
        assert job is not None, f"Iter {entry.iteration}: node {entry.node_id} has no journal row"
        assert job.collected, f"node {entry.node_id}: entry written, row not collected"
        assert (job.slot, job.parent) == (entry.slot, entry.parent), (entry, job)
        if job.status == "failed":
            assert entry.status == "failed" and entry.failure.startswith(job.failure_kind), (entry, job)
        else:
            assert job.status == "done", job
        launches = starts(job.run_dir) + sum(starts(p) for p in Path(job.run_dir).glob("attempt_*"))
        assert launches <= job.attempts, f"node {job.node_id}: trainer started {launches}x, {job.attempts} attempts"
        if job.attempts > 1:
            assert job.reason.startswith("attempt") or job.failure_kind in ("lost", "infrastructure"), job
            relaunched += 1
    if final:
        assert all(job.collected for job in rows.values()), [j.node_id for j in rows.values() if not j.collected]
        assert set(rows) == set(ids), (sorted(rows), sorted(ids))

    repo = git.Repo(folder)
    commits = [c for c in repo.iter_commits() if c.message.startswith("Iter ")]
    numbers = sorted(int(c.message.split(":")[0].split()[1]) for c in commits)
    assert numbers == list(range(1, n + 1)), f"iteration commits {numbers}"
    log_name = f"{NAME}_analysis.md"
    log = (folder / log_name).read_bytes()
    ends = entry_ends(log, entries)
    for commit in commits:
        number = int(commit.message.split(":")[0].split()[1])
        blob = commit.tree / log_name
        last = entries[number - 1]
        if blob.binsha != git_blob_id(log[: ends[number - 1]]):  # not the log of today cut after Iter N: read it
            committed = parse_notebook(blob.data_stream.read().decode()).entries
            assert [e.iteration for e in committed][-1] == number, f"commit of Iter {number} holds {len(committed)}"
            last = committed[-1]
        assert f"node {last.node_id}," in commit.message
    if final:
        assert not repo.is_dirty(untracked_files=False, path=log_name)

    memory = read_memory(folder / f"{NAME}_memory.md")
    for section in KNOWN_SECTIONS:
        assert memory.get(section) is not None, section
    scores = (folder / f"{NAME}_ucb_scores.txt").read_text()
    listed = sorted(int(line.split(":")[0].split()[1]) for line in scores.splitlines() if line.startswith("Node "))
    originals = sorted(e.node_id for e in entries if not e.is_replicate)
    if final:
        assert listed == originals, (listed, originals)
        header = scores.splitlines()[0]
        assert f"N={n}," in header, header  # every entry is one visit
    failed = [e for e in entries if e.status == "failed"]
    return {"entries": n, "failed": len(failed), "relaunched": relaunched, "commits": len(commits)}


def record_figures(suite: str, **figures) -> None:
    """Append ``figures`` to $UCBX_RELIABILITY_FIGURES (JSON lines), when set."""
    path = os.environ.get("UCBX_RELIABILITY_FIGURES")
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps({"suite": suite, "long": LONG, **figures}) + "\n")

"""What a person sees: `ucbx status`, the daemon's rich live view, and plain log lines.

`status_view` reads an exploration folder into a `StatusView` (slots, running jobs with
their elapsed time, best node, top UCB nodes, last entries, budget). On a terminal the
daemon redraws it with rich's `Live`; elsewhere (a log file, cron, CI) it prints one
timestamped line per event.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from agent.driver import Exploration, StepReport
from agent.history import Proposal
from agent.notes import best_line
from agent.snapshot import Snapshot
from slots.journal import IN_FLIGHT

TOP_UCB = 5
LAST_ENTRIES = 5


@dataclass(frozen=True)
class SlotView:
    slot: int
    label: str
    state: str  # running | queued | pending | idle
    node_id: int | None = None
    elapsed_s: float | None = None
    mutation: str = ""


@dataclass(frozen=True)
class StatusView:
    name: str
    folder: str
    written: int
    budget: int
    slots: list[SlotView]
    best: str  # one line, "" when nothing finished
    top: list[str] = field(default_factory=list)
    last: list[str] = field(default_factory=list)
    jobs: dict[str, int] = field(default_factory=dict)


def status_view(exploration: Exploration, snapshot: Snapshot | None = None) -> StatusView:
    """The folder as it is now (``snapshot``: one the caller has already read this pass)."""
    spec = exploration.spec
    snapshot = snapshot or exploration.snapshot()
    reader = exploration.reader
    jobs = reader.uncollected()
    flying = {job.slot: job for job in jobs if job.status in IN_FLIGHT}
    pending = {p.slot: p for p in reader.pending()}
    slots = []
    for slot in range(spec.n_slots):
        label = spec.slots.label(slot)
        if slot in flying:
            job = flying[slot]
            elapsed = time.time() - job.started_at if job.started_at else None
            what = Proposal.from_payload(slot, job.payload).mutation_text(spec.space)
            slots.append(SlotView(slot, label, job.status, job.node_id, elapsed, what))
        elif slot in pending:
            what = pending[slot].proposal.mutation_text(spec.space)
            slots.append(SlotView(slot, label, "pending", pending[slot].node_id, mutation=what))
        else:
            slots.append(SlotView(slot, label, "idle"))
    top = [
        f"node {node_id}: UCB={ucb:.3f}, reward={_reward(snapshot.pooled.get(node_id))}"
        for node_id, ucb in snapshot.ranking[:TOP_UCB]
    ]
    entries = snapshot.entries[-LAST_ENTRIES:]
    last = [f"Iter {e.iteration}: {e.status} node {e.node_id} ({e.mode}) {e.mutation}" for e in entries]
    counts = exploration.journal.status_counts()
    best = best_line(snapshot) if snapshot.leader is not None else ""
    return StatusView(
        spec.name,
        str(exploration.folder.root),
        snapshot.entries_written,
        spec.exploration.budget,
        slots,
        best,
        top,
        last,
        counts,
    )


def _reward(value: float | None) -> str:
    return "failed" if value is None else f"{value:.3f}"


def _elapsed(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def format_status(view: StatusView) -> str:
    """`ucbx status` as plain text."""
    lines = [
        f"{view.name}: {view.written}/{view.budget} iterations ({view.folder})",
        "jobs: " + (", ".join(f"{n} {status}" for status, n in sorted(view.jobs.items())) or "none"),
        "slots:",
    ]
    for slot in view.slots:
        node = f"node {slot.node_id}" if slot.node_id is not None else ""
        parts = [slot.state, node, _elapsed(slot.elapsed_s), slot.mutation]
        lines.append(f"  slot_{slot.slot} ({slot.label}): " + " ".join(part for part in parts if part))
    lines.append(f"best: {view.best or 'none yet'}")
    lines += ["top UCB:"] + [f"  {line}" for line in view.top]
    lines += ["last entries:"] + [f"  {line}" for line in view.last]
    return "\n".join(lines)


def _tables(view: StatusView) -> Group:
    slots = Table(title=f"{view.name}: {view.written}/{view.budget} iterations, best {view.best or 'none yet'}")
    for column in ("slot", "state", "node", "elapsed", "what"):
        slots.add_column(column)
    for slot in view.slots:
        slots.add_row(
            f"slot_{slot.slot} ({slot.label})",
            slot.state,
            "" if slot.node_id is None else str(slot.node_id),
            _elapsed(slot.elapsed_s),
            slot.mutation,
        )
    top = Table(title="top UCB")
    top.add_column("node")
    for line in view.top:
        top.add_row(line)
    last = Table(title="last entries")
    last.add_column("entry")
    for line in view.last:
        last.add_row(line)
    return Group(slots, top, last)


class PlainReporter:
    """One timestamped line per event, for logs and non-terminals."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self.said: set[str] = set()

    def say(self, text: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}", file=self.stream, flush=True)

    def update(self, exploration: Exploration, report: StepReport) -> None:
        for entry in report.written:
            self.say(
                f"Iter {entry.iteration}: {entry.status} node {entry.node_id} (parent "
                f"{entry.parent or 'root'}, slot_{entry.slot}) {entry.mutation} | {entry.observation}"
            )
        for slot, node_id in report.launched:
            self.say(f"launched node {node_id} on slot_{slot}")
        for problem in report.problems:
            if problem not in self.said:  # a standing problem is said once
                self.said.add(problem)
                self.say(f"problem: {problem}")


class LiveReporter:
    """A rich live view redrawn after every pass; the plain lines still go above it."""

    def __init__(self, console: Console):
        self.console = console
        self.live = Live(console=console, refresh_per_second=2, transient=False)
        self.plain = PlainReporter(console.file)

    def __enter__(self) -> LiveReporter:
        self.live.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.live.__exit__(*exc_info)

    def update(self, exploration: Exploration, report: StepReport) -> None:
        for entry in report.written:
            self.live.console.print(f"Iter {entry.iteration}: {entry.status} node {entry.node_id} {entry.mutation}")
        for problem in report.problems:
            if problem not in self.plain.said:
                self.plain.said.add(problem)
                self.live.console.print(f"[red]problem:[/red] {problem}")
        self.live.update(_tables(status_view(exploration, report.snapshot)))

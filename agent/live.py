"""What a person sees: `ucbx status`, the daemon's rich live view, and plain log lines.

`status_view` reads an exploration folder into a `StatusView` (slots, running jobs with
their elapsed time and progress, best node, top UCB nodes, last entries, budget). On a
terminal the daemon redraws it with rich's `Live`; elsewhere (a log file, cron, CI) it
prints one timestamped line per event.

A running job's progress is its last progress line (memory/progress.py, read by the
launcher from the run folder): a bar with the fraction done, the elapsed and estimated
remaining time (elapsed * (1 - f) / f) and the latest value of the primary metric (or of
the pruning metric, or the line's first metric); a job whose trainer writes none shows
``no progress reported``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from agent.driver import Exploration, StepReport
from agent.history import Proposal
from agent.notes import best_line
from agent.snapshot import Snapshot
from agent.spec import Spec
from memory.notebook import format_number
from slots.journal import IN_FLIGHT, JobRecord

TOP_UCB = 5
LAST_ENTRIES = 5
BAR_WIDTH = 20
NO_PROGRESS = "no progress reported"


@dataclass(frozen=True)
class Progress:
    """A running job's last progress line, as the status shows it."""

    fraction: float
    step: float
    of: float
    remaining_s: float | None  # None until something is done
    metric: str = ""
    value: float | None = None
    stopping: str = ""  # the pruning rule asked the job to end: why


@dataclass(frozen=True)
class SlotView:
    slot: int
    label: str
    state: str  # running | queued | pending | idle
    node_id: int | None = None
    elapsed_s: float | None = None
    mutation: str = ""
    progress: Progress | None = None  # running jobs that report progress
    progress_note: str = ""  # NO_PROGRESS for a running job that reports none


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
            progress = job_progress(exploration, job, elapsed)
            note = NO_PROGRESS if job.status == "running" and progress is None else ""
            slots.append(SlotView(slot, label, job.status, job.node_id, elapsed, what, progress, note))
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


def shown_metric(spec: Spec, metrics: dict[str, float]) -> str:
    """Which of a job's progress metrics the status shows: the primary, else the pruning metric, else the first."""
    for name in (spec.objective.primary, spec.exploration.pruning.metric):
        if name and name in metrics:
            return name
    return next(iter(metrics), "")


def job_progress(exploration: Exploration, job: JobRecord, elapsed_s: float | None) -> Progress | None:
    """The job's last progress line as the status shows it, with the metric's latest value (a metric
    reported only at checkpoints shows the last checkpoint's); None when it reported none."""
    read = exploration.launcher.progress(job)
    last = read.last
    if last is None:
        return None
    remaining = None
    if elapsed_s is not None and last.fraction > 0:
        remaining = elapsed_s * (1 - last.fraction) / last.fraction
    latest = read.latest_metrics
    metric = shown_metric(exploration.spec, latest)
    value = latest.get(metric) if metric else None
    return Progress(last.fraction, last.step, last.of, remaining, metric, value, job.stop.get("reason", ""))


def progress_text(progress: Progress | None, elapsed_s: float | None) -> str:
    """``[#####---------------]  25% 5/20, 0:01:00 elapsed, ~0:03:00 left, loss=0.31``."""
    if progress is None:
        return ""
    filled = round(progress.fraction * BAR_WIDTH)
    parts = [f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {progress.fraction:4.0%} {progress.step:g}/{progress.of:g}"]
    if elapsed_s is not None:
        parts.append(f"{_elapsed(elapsed_s)} elapsed")
    if progress.remaining_s is not None:
        parts.append(f"~{_elapsed(progress.remaining_s)} left")
    if progress.metric:
        parts.append(f"{progress.metric}={format_number(progress.value)}")
    text = ", ".join(parts)
    return f"{text}; stopping: {progress.stopping}" if progress.stopping else text


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
        progress = progress_text(slot.progress, slot.elapsed_s) or slot.progress_note
        if progress:
            lines.append(f"    {progress}")
    lines.append(f"best: {view.best or 'none yet'}")
    lines += ["top UCB:"] + [f"  {line}" for line in view.top]
    lines += ["last entries:"] + [f"  {line}" for line in view.last]
    return "\n".join(lines)


def _tables(view: StatusView) -> Group:
    slots = Table(title=f"{view.name}: {view.written}/{view.budget} iterations, best {view.best or 'none yet'}")
    for column in ("slot", "state", "node", "elapsed", "progress", "what"):
        slots.add_column(column)
    for slot in view.slots:
        slots.add_row(
            f"slot_{slot.slot} ({slot.label})",
            slot.state,
            "" if slot.node_id is None else str(slot.node_id),
            _elapsed(slot.elapsed_s),
            Text(progress_text(slot.progress, None) or slot.progress_note),  # Text: the bar's [ ] are not markup
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
        for job in report.stopped:
            self.say(f"stopping node {job.node_id} on slot_{job.slot}: {job.stop.get('reason', '')}")
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
        for job in report.stopped:
            self.live.console.print(f"stopping node {job.node_id}: {job.stop.get('reason', '')}")
        for problem in report.problems:
            if problem not in self.plain.said:
                self.plain.said.add(problem)
                self.live.console.print(f"[red]problem:[/red] {problem}")
        self.live.update(_tables(status_view(exploration, report.snapshot)))

"""One pass over an exploration folder (`Exploration.step`), as DESIGN.md's "One iteration, as data".

1. refresh: the launcher polls the journal's jobs and records the finished ones;
2. read: one `Snapshot` of the folder (agent/reader.py: only what changed since the
   last pass is parsed);
3. collect: each finished, uncollected job becomes a `## Iter N` entry, then memory,
   UCB scores and a git commit (agent/recorder.py); the snapshot grows with it;
   then the running jobs' progress is read and the ones the pruning rule gives up on
   are stopped (agent/pruning.py; their entries are written when they have ended);
4. propose: each free slot gets a proposal from the policy, written as the slot's
   config (agent/dispatch.py); the snapshot counts it in flight;
5. launch: each pending slot config is read back (a person may have edited it),
   validated and submitted.

The daemon loop and `ucbx step`'s single pass are in agent/daemon.py.

Numbering: a node id is given at proposal time (one more than any id seen) and never
reused; the iteration number N is the entry's position in the log, given when the
entry is written. With asynchronous slots entries arrive in finishing order, so
Iter N need not be node N. The journal's (unique) ``iteration`` column holds the node id.

Restart is exact because the journal and the files are the truth: a finished job whose
entry is already in the log is only marked collected; a pending slot whose node is
already in the journal was launched; a queued row without a handle is launched by the
launcher's `recover`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.dispatch import Dispatcher
from agent.folder import ExplorationFolder
from agent.playbook import load_playbook
from agent.policy import Policy
from agent.pruning import Pruner
from agent.reader import FolderReader
from agent.recorder import Recorder
from agent.snapshot import Snapshot, spent
from agent.spec import Spec
from memory.notebook import Entry
from slots.journal import JobRecord, Journal
from slots.launcher import make_launcher


@dataclass
class StepReport:
    """What one pass did."""

    written: list[Entry] = field(default_factory=list)
    proposed: list[tuple[int, int]] = field(default_factory=list)  # (slot, node id)
    launched: list[tuple[int, int]] = field(default_factory=list)
    stopped: list[JobRecord] = field(default_factory=list)  # asked to end by the pruning rule this pass
    problems: list[str] = field(default_factory=list)
    snapshot: Snapshot | None = None  # the folder after the pass's writes and proposals


class Reporter(Protocol):
    """Where the daemon tells a person what happens (agent/live.py)."""

    def update(self, exploration: Exploration, report: StepReport) -> None: ...


class Exploration:
    """An exploration folder and the parts that act on it; one per process."""

    def __init__(self, spec: Spec, folder: ExplorationFolder):
        """Open (creating the journal of) ``folder``; `prepare` before writing anything else."""
        self.spec = spec
        self.folder = folder
        self.journal = Journal(folder.root)
        self.launcher = make_launcher(spec.launcher.kind, launcher_options(spec), folder.root)
        self.policy = Policy(spec, load_playbook(spec.exploration.playbook))
        self.reader = FolderReader(spec, folder, self.journal)
        self.recorder = Recorder(spec, folder, self.journal, self.reader, self.policy)
        self.dispatcher = Dispatcher(spec, folder, self.journal, self.reader, self.policy, self.launcher)
        self.pruner = Pruner(spec, folder, self.journal, self.launcher)

    def prepare(self) -> None:
        """Before a pass that writes: what a crash left is finished or cleared first."""
        self.recorder.prepare()
        self.dispatcher.remove_launched_pending()

    def snapshot(self) -> Snapshot:
        return self.reader.snapshot()

    def capacity(self, snapshot: Snapshot, target: int | None = None) -> int:
        """How many more jobs may start: within the budget and the iteration target of this run."""
        limit = self.spec.exploration.budget if target is None else min(target, self.spec.exploration.budget)
        return max(0, limit - spent(snapshot))

    def step(self, launch: bool = True, propose: bool = True, target: int | None = None) -> StepReport:
        """Refresh, collect, propose, launch; called once by `ucbx step`, in a loop by the daemon."""
        report = StepReport(problems=self.reader.directive_problems())
        self.launcher.refresh(self.journal)
        snapshot = self.reader.snapshot()
        report.problems += self.reader.notices()
        finished = self.reader.finished_jobs()
        for job in finished:
            entry = self.recorder.collect(job, snapshot)
            if entry is not None:
                report.written.append(entry)
            snapshot = self.reader.current  # the same one grown, or one read again after a torn append
        report.problems += self.pruner.note_finished(finished)
        report.stopped, problems = self.pruner.check(snapshot, self.reader.uncollected())
        report.problems += problems
        if propose:
            self._propose(snapshot, report, target)
        if launch and self._launch(report) and propose:  # proposals dropped for a new directive
            snapshot = self.reader.snapshot()
            self._propose(snapshot, report, target)
            self._launch(report)
        report.snapshot = snapshot
        return report

    def _propose(self, snapshot: Snapshot, report: StepReport, target: int | None) -> None:
        proposed, problems = self.dispatcher.propose(snapshot, self.capacity(snapshot, target))
        report.proposed += proposed
        report.problems += problems

    def _launch(self, report: StepReport) -> int:
        launched, problems, dropped = self.dispatcher.launch(self.recorder.code_version)
        report.launched += launched
        report.problems += problems
        return dropped


def launcher_options(spec: Spec) -> dict[str, Any]:
    """The spec's launcher section as the launcher reads it."""
    launcher = spec.launcher
    gpus = list(launcher.gpus) if isinstance(launcher.gpus, tuple) else launcher.gpus
    options = {
        "timeout_s": launcher.timeout_s,
        "gpus": gpus,
        "grace_s": launcher.grace_s,
        "max_retries": launcher.max_retries,
        **launcher.slurm,
    }
    if launcher.threads_per_job is not None:
        options["threads_per_job"] = launcher.threads_per_job
    return options

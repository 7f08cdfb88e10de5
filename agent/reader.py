"""Reading an exploration folder into a `Snapshot`, cheaply enough to do at every pass.

`FolderReader` keeps what it read between passes of a daemon: the log is parsed
incrementally (`memory.notebook.NotebookReader`: appended bytes only; a hand edit is
read again whole and said once), the node record of each entry is made once, the
journal is asked only for the jobs not yet collected (an indexed query), and the
memory's directives are parsed again only when the memory file changed. What it reads:

- entries: the log's `## Iter N` entries;
- in flight: jobs launched whose entry is not written (the journal), and proposals
  written to a slot config and not launched yet (``slots/slot_SS.pending.json``);
- directives: the memory's ``## Directives`` that apply to the spec (the others are
  problems, said once per version of the section).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from agent.directive_rules import DirectiveRules
from agent.folder import ExplorationFolder
from agent.history import NodeRecord, Proposal
from agent.snapshot import Snapshot
from agent.spec import Spec
from memory.directives import Directive
from memory.errors import Problem
from memory.notebook import Entry, NotebookReader
from memory.working_memory import DIRECTIVES, read_memory
from slots.journal import FINISHED, JobRecord, Journal


@dataclass(frozen=True)
class Pending:
    """A proposal written to its slot config and not launched yet."""

    slot: int
    node_id: int
    proposal: Proposal
    path: Path


class FolderReader:
    """One exploration folder, read again at each pass for only what changed."""

    def __init__(self, spec: Spec, folder: ExplorationFolder, journal: Journal):
        self.spec = spec
        self.folder = folder
        self.journal = journal
        self.log = NotebookReader(folder.log)
        self.rules = DirectiveRules(spec.space)
        self._last: Snapshot | None = None
        self._generation = -1
        self._memory_version: tuple | None = None
        self._directives: tuple[list[Directive], list[Problem]] = ([], [])
        self._directives_said: str | None = None

    # ------------------------------------------------------------ the log

    def entries(self) -> list[Entry]:
        return self.log.read().entries

    def notices(self) -> list[str]:
        """What the log reader noticed since the last call (a hand edit read again whole)."""
        said, self.log.notices = self.log.notices, []
        return said

    # ------------------------------------------------------------ in flight

    def pending(self) -> list[Pending]:
        """Pending proposals, by slot."""
        found = []
        for path in self.folder.pending_files():
            data = json.loads(path.read_text(encoding="utf-8"))
            proposal = Proposal.from_payload(data["slot"], data["payload"])
            found.append(Pending(data["slot"], data["node_id"], proposal, path))
        return found

    def uncollected(self) -> list[JobRecord]:
        """Jobs launched whose entry is not written yet."""
        return self.journal.uncollected()

    def finished_jobs(self) -> list[JobRecord]:
        """Finished jobs whose entry is not written yet, oldest first."""
        jobs = [job for job in self.uncollected() if job.status in FINISHED]
        return sorted(jobs, key=lambda job: (job.finished_at or 0, job.id))

    def in_flight(self) -> list[NodeRecord]:
        """Nodes launched (the journal) or proposed (pending) whose entry is not written yet."""
        records = [Proposal.from_payload(job.slot, job.payload).as_record(job.node_id) for job in self.uncollected()]
        return records + [p.proposal.as_record(p.node_id) for p in self.pending()]

    # ------------------------------------------------------------ directives

    def directives(self) -> tuple[list[Directive], list[Problem]]:
        """The directives that apply to this spec, and the problems of the others (ignored)."""
        path = self.folder.memory
        try:
            stat = path.stat()
            version = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        except FileNotFoundError:
            version = None
        if version != self._memory_version or version is None:
            memory = read_memory(path)
            directives, problems = memory.directives()
            usable, refused = self.rules.usable(directives, str(path))
            self._directives = (usable, problems + refused)
            self._section = memory.get(DIRECTIVES)
            self._memory_version = version
        return list(self._directives[0]), list(self._directives[1])

    def directive_problems(self) -> list[str]:
        """Directives ignored, said once per version of the Directives section (its lines move as memory grows)."""
        problems = self.directives()[1]
        if self._section == self._directives_said:
            return []
        self._directives_said = self._section
        return [str(problem) for problem in problems]

    # ------------------------------------------------------------ all of it

    @property
    def current(self) -> Snapshot:
        """The snapshot handed out last (as the pass has updated it)."""
        return self._last if self._last is not None else self.snapshot()

    def snapshot(self) -> Snapshot:
        """The exploration as it is now: built once per pass, then updated by the pass.

        The previous pass's snapshot is grown with the entries appended since (its in-flight
        nodes dropped first), so a pass costs what changed, not the whole log; after a hand
        edit of the log (the log reader read it again whole) it is built anew.
        """
        entries = self.entries()
        directives = self.directives()[0]
        in_flight = self.in_flight()
        last = self._last
        if last is None or self.log.generation != self._generation or len(entries) < len(last.entries):
            snapshot = Snapshot.build(self.spec, entries, in_flight, directives)
        else:
            snapshot = last.grown(entries, in_flight, directives)
        self._last, self._generation = snapshot, self.log.generation
        return snapshot

"""Writing what a finished job gave: its `## Iter N` entry, then the memory, the UCB scores
and the iteration's git commit, in that order (each step a crash point: memory/crash.py).

The entry append is exact across crashes: the journal records where the append began
(``log_offset`` in the job's payload) before it starts; if a crash cut it, what follows
that offset is set aside to ``<log>.torn`` and the entry is written again. A job whose
entry is already in the log (written just before a crash) is only marked collected.
"""

from __future__ import annotations

import yaml

from agent.analysis import build_entry, judge
from agent.folder import ExplorationFolder
from agent.history import Proposal
from agent.notes import update_memory
from agent.policy import Policy
from agent.provenance import Provenance, trainer_version
from agent.reader import FolderReader
from agent.snapshot import Snapshot
from agent.spec import Spec
from memory.atomic import write_text_atomic
from memory.crash import crash_point
from memory.notebook import Entry, append_entry, parse_notebook, set_aside_from
from memory.working_memory import read_memory, write_memory
from slots.config import set_path, write_config
from slots.journal import JobRecord, Journal
from ucb.scores import block_range, scores_header, total_visits, write_scores

LOG_OFFSET = "log_offset"  # journal payload: where this job's entry append began in the log


class Recorder:
    """The writer of an exploration's notebook files and its git history."""

    def __init__(self, spec: Spec, folder: ExplorationFolder, journal: Journal, reader: FolderReader, policy: Policy):
        self.spec = spec
        self.folder = folder
        self.journal = journal
        self.reader = reader
        self.policy = policy
        self.git: Provenance | None = None
        self.code_version = ""

    def prepare(self) -> None:
        """Before a pass that writes: the git repository, the spec's copy, the memory file, the code version.

        A crash after a whole append and before its commit is finished here: the entry's
        memory, scores and commit are made now.
        """
        self.git = Provenance(self.folder.root)
        self.code_version = trainer_version(self.spec)
        self._write_spec_copy()
        if not self.folder.memory.exists():  # so a person can write directives before the first entry
            write_memory(self.folder.memory, read_memory(self.folder.memory), log_name=self.folder.log.name)
        entries = self.reader.entries()
        if entries and entries[-1].has_next and self.git.iteration_commits() < len(entries):
            self.after_entry(self.reader.snapshot(), entries[-1])

    def _write_spec_copy(self) -> None:
        """`spec.yaml` and `base_config.yaml` in the folder: the spec as run, loadable from there."""
        write_config(self.folder.base_copy, self.spec.base)
        raw = set_path(self.spec.raw, "trainer.base_config", self.folder.base_copy.name)
        raw = set_path(raw, "trainer.command", list(self.spec.trainer.command))  # {spec_dir} resolved
        if self.spec.trainer.source is not None:
            raw = set_path(raw, "trainer.source", str(self.spec.trainer.source.resolve()))
        if self.spec.exploration.playbook:
            raw = set_path(raw, "exploration.playbook", self.spec.exploration.playbook)  # a file: its absolute path
        write_text_atomic(self.folder.spec_copy, yaml.safe_dump(raw, sort_keys=False))

    # ------------------------------------------------------------ one finished job

    def collect(self, job: JobRecord, snapshot: Snapshot) -> Entry | None:
        """Write ``job``'s entry (None if a crash already did) and what follows it; ``snapshot`` grows."""
        if self._set_aside_unfinished_append(job):
            snapshot = self.reader.snapshot()
        if any(e.node_id == job.node_id and e.slot == job.slot for e in snapshot.entries):
            self.journal.update(job.id, collected=True)  # written before a crash (a hand note has no Slot)
            return None
        entry = self._entry(job, snapshot)
        snapshot.add_entry(entry)
        next_parent = self.policy.parent_candidates(snapshot)[0]
        entry.next_parent = next_parent.node_id if next_parent else None
        crash_point("log.entry-built")
        start = self.folder.log.stat().st_size if self.folder.log.exists() else 0
        self.journal.update(job.id, payload={**job.payload, LOG_OFFSET: start})
        crash_point("log.before-append")
        append_entry(self.folder.log, entry)
        crash_point("log.after-append")
        self.journal.update(job.id, collected=True)
        crash_point("log.after-collected")
        self.after_entry(snapshot, entry)
        return entry

    def _set_aside_unfinished_append(self, job: JobRecord) -> bool:
        """Set aside what a crash left of this job's own append; True when something was.

        The journal holds where the append began (``log_offset``); if what follows is not
        this job's whole entry (its Next line included), it is an unfinished write, cut
        anywhere, and goes to ``<log>.torn`` before the entry is written again.
        """
        log = self.folder.log
        offset = job.payload.get(LOG_OFFSET)
        if offset is None or not log.exists() or log.stat().st_size <= offset:
            return False
        appended = parse_notebook(log.read_bytes()[offset:].decode("utf-8", errors="replace")).entries
        if any(e.node_id == job.node_id and e.slot == job.slot and e.has_next for e in appended):
            return False
        set_aside_from(log, offset)
        self.reader.log.forget()
        return True

    def _entry(self, job: JobRecord, snapshot: Snapshot) -> Entry:
        """The job's entry, its Next line not set yet."""
        proposal = Proposal.from_payload(job.slot, job.payload)
        finished = [r.reward for r in snapshot.finished if r.reward is not None]
        entry = build_entry(
            self.spec,
            job,
            proposal,
            judge(self.spec, job),
            iteration=snapshot.entries_written + 1,
            parent=snapshot.get(proposal.parent),
            best_before=max(finished, default=None),
            next_parent=None,
            code_version=job.payload.get("code_version", ""),
        )
        return entry

    def after_entry(self, snapshot: Snapshot, entry: Entry) -> None:
        """Memory, scores and the iteration's commit (its run folder included), from ``snapshot`` with the entry."""
        memory = read_memory(self.folder.memory)
        update_memory(memory, self.spec, snapshot)
        crash_point("memory.before-write")
        write_memory(self.folder.memory, memory, log_name=self.folder.log.name)
        crash_point("memory.after-write")
        self._write_scores(snapshot, entry)
        crash_point("scores.after-write")
        title = f"Iter {entry.iteration}: {entry.status} (node {entry.node_id}, slot_{entry.slot})"
        message = f"{title}\n\n{entry.mutation}\n"
        paths = [
            self.folder.log,
            self.folder.memory,
            self.folder.scores,
            self.folder.spec_copy,
            self.folder.base_copy,
            self.folder.slots_dir,
            self.folder.run_dir(entry.node_id),
        ]
        crash_point("git.before-commit")
        self.git.commit(paths, message)
        crash_point("git.after-commit")

    def _write_scores(self, snapshot: Snapshot, entry: Entry) -> None:
        tree = snapshot.tree
        block = block_range(entry.iteration, self.spec.exploration.n_iter_block)
        header = scores_header(total_visits(tree), self.spec.exploration.ucb_c, (block[0] + 1, block[1], block[2]))
        primary = self.spec.objective.primary
        write_scores(self.folder.scores, snapshot.scores, tree, header, columns=[(primary, primary)])

"""The driver: one pass (`Exploration.step`) and the daemon loop (`Exploration.run`).

One pass, as DESIGN.md's "One iteration, as data":
1. refresh: the launcher polls the journal's jobs and records the finished ones;
2. collect: each finished, uncollected job becomes a `## Iter N` entry (append), is
   marked collected, and the memory, the UCB scores and a git commit follow;
3. propose: each free slot gets a proposal from the policy, written as the slot's
   config `slots/slot_SS.yaml` with its reasons beside it (`slot_SS.pending.json`);
4. launch: each pending slot config is read back (a person may have edited it),
   validated, copied to `iterations/node_NNNN/config.yaml` and submitted.

Numbering: a node id is given at proposal time (one more than any id seen) and never
reused; the iteration number N is the entry's position in the log, given when the
entry is written. With asynchronous slots entries arrive in finishing order, so
Iter N need not be node N. The journal's (unique) ``iteration`` column holds the node id.

Restart is exact because the journal and the files are the truth: a finished job whose
entry is already in the log is only marked collected; a pending slot whose node is
already in the journal was launched; a queued row without a handle is launched by the
launcher's `recover`. On SIGINT/SIGTERM the daemon stops launching, finishes the pass
it is in, ends local jobs (they are queued again and rerun next time) and leaves SLURM
jobs running (re-attached next time).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import yaml

from agent.analysis import build_entry, judge
from agent.history import Change, NodeRecord, record_from_entry
from agent.notes import Snapshot, update_memory
from agent.playbook import load_playbook
from agent.policy import Policy, PolicyState, Proposal
from agent.provenance import Provenance, trainer_version
from agent.spec import Spec
from memory.atomic import write_text_atomic
from memory.crash import crash_point
from memory.directives import Directive
from memory.errors import ConfigError, Problem
from memory.notebook import Entry, append_entry, parse_notebook, set_aside_from
from memory.working_memory import DIRECTIVES, read_memory, write_memory
from slots.config import build_slot_config, get_path, load_config, set_path, validate_config, write_config
from slots.journal import JobRecord, Journal
from slots.launcher import JobRequest, make_launcher
from slots.lock import FolderLock
from ucb.scores import block_range, puct, scores_header, total_visits, write_scores
from ucb.tree import Tree, score_entry

IN_FLIGHT = ("queued", "running")
PENDING_SUFFIX = ".pending.json"
SPEC_COPY, BASE_COPY = "spec.yaml", "base_config.yaml"
LOG_OFFSET = "log_offset"  # journal payload: where this job's entry append began in the log
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
LOCAL_STOP_WAIT_S = 30.0


@dataclass
class StepReport:
    """What one pass did."""

    written: list[Entry] = field(default_factory=list)
    proposed: list[tuple[int, int]] = field(default_factory=list)  # (slot, node id)
    launched: list[tuple[int, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Reporter(Protocol):
    """Where the daemon tells a person what happens (agent/live.py)."""

    def update(self, exploration: Exploration, report: StepReport) -> None: ...


@dataclass(frozen=True)
class Pending:
    """A proposal written to its slot config and not launched yet."""

    slot: int
    node_id: int
    proposal: Proposal
    path: Path


def node_tree(spec: Spec, entries: list[Entry], in_flight: list[NodeRecord]) -> Tree:
    """The UCB tree of the log entries, nodes in flight counted as virtual visits."""
    return Tree.from_entries(entries, spec.objective, in_flight=[(r.node_id, r.parent) for r in in_flight])


def ranking(spec: Spec, tree: Tree, directives=()) -> list:
    """PUCT scores of ``tree``, highest first; nodes under a `freeze` directive marked frozen."""
    frozen = [d.node for d in directives if d.kind == "freeze"]
    return puct(tree, spec.exploration.ucb_c, frozen=frozen)


def policy_state(spec: Spec, entries: list[Entry], in_flight: list[NodeRecord], directives=()) -> PolicyState:
    """What the policy sees when a slot frees (the driver's, the benchmarks'): node records from the
    log entries and the in-flight nodes, the PUCT ranking with in-flight virtual visits, pooled rewards."""
    tree = node_tree(spec, entries, in_flight)
    pooled = {node_id: node.mean for node_id, node in tree.nodes.items() if not node.in_flight}
    records = [record_from_entry(e, spec.space, score_entry(e, spec.objective, None)[0]) for e in entries]
    return PolicyState(
        records=records + list(in_flight),
        pooled=pooled,
        directives=list(directives),
        ranking=[(score.node_id, score.ucb) for score in ranking(spec, tree, directives)],
        entries_written=len(entries),
    )


class Exploration:
    """An exploration folder and everything that acts on it; one per process."""

    def __init__(self, spec: Spec, folder: Path):
        """Open (creating the journal of) ``folder``; `prepare` before writing anything else."""
        self.spec = spec
        self.folder = folder
        self.log_path = folder / f"{spec.name}_analysis.md"
        self.memory_path = folder / f"{spec.name}_memory.md"
        self.scores_path = folder / f"{spec.name}_ucb_scores.txt"
        self.slots_dir = folder / "slots"
        self.runs_dir = folder / "iterations"
        self.journal = Journal(folder)
        self.launcher = make_launcher(spec.launcher.kind, launcher_options(spec), folder)
        self.policy = Policy(spec, load_playbook(spec.exploration.playbook))
        self.git: Provenance | None = None
        self.code_version = ""
        self._directives_seen: str | None = None
        self._parsed_log: tuple[tuple[int, int, int], list[Entry]] | None = None  # (inode, size, mtime), entries

    def prepare(self) -> None:
        """Before a pass that writes: the git repository, the spec's copy, the memory file, the code version."""
        self.git = Provenance(self.folder)
        self.code_version = trainer_version(self.spec)
        self._write_spec_copy()
        if not self.memory_path.exists():  # so a person can write directives before the first entry
            write_memory(self.memory_path, read_memory(self.memory_path), log_name=self.log_path.name)
        entries = self.entries()
        if (
            entries and entries[-1].has_next and self.git.iteration_commits() < len(entries)
        ):  # a crash after a whole append
            self._after_entry(entries, entries[-1])
        for pending in self.pending():  # launched just before a crash: the slot is the journal's now
            if self.journal.by_iteration(pending.node_id) is not None:
                pending.path.unlink()

    def _write_spec_copy(self) -> None:
        """`spec.yaml` and `base_config.yaml` in the folder: the spec as run, loadable from there."""
        write_config(self.folder / BASE_COPY, self.spec.base)
        raw = set_path(self.spec.raw, "trainer.base_config", BASE_COPY)
        raw = set_path(raw, "trainer.command", list(self.spec.trainer.command))  # {spec_dir} resolved
        if self.spec.trainer.source is not None:
            raw = set_path(raw, "trainer.source", str(self.spec.trainer.source.resolve()))
        write_text_atomic(self.folder / SPEC_COPY, yaml.safe_dump(raw, sort_keys=False))

    # ------------------------------------------------------------------ reading the folder

    def entries(self) -> list[Entry]:
        """The log's entries, parsed again only when the file changed (an append, a person's edit, a rewrite).

        The change is seen by inode, size and modification time (ns): a hand edit that keeps
        the size and lands within the file system's time granularity of the daemon's last
        write is seen at the next append.
        """
        try:
            stat = self.log_path.stat()
        except FileNotFoundError:
            return []
        version = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if self._parsed_log is None or self._parsed_log[0] != version:
            text = self.log_path.read_text(encoding="utf-8")
            self._parsed_log = (version, parse_notebook(text, str(self.log_path)).entries)
        return list(self._parsed_log[1])

    def pending(self) -> list[Pending]:
        """Pending proposals, by slot."""
        found = []
        for path in sorted(self.slots_dir.glob(f"slot_*{PENDING_SUFFIX}")):
            data = json.loads(path.read_text(encoding="utf-8"))
            found.append(
                Pending(data["slot"], data["node_id"], Proposal.from_payload(data["slot"], data["payload"]), path)
            )
        return found

    def in_flight(self) -> list[JobRecord]:
        """Jobs launched whose entry is not written yet."""
        return self.journal.jobs(status=IN_FLIGHT) + self.journal.jobs(status=("done", "failed"), collected=False)

    def read_directives(self) -> tuple[list[Directive], list[Problem]]:
        """The person's directives that apply to this spec, and the problems of the others (ignored)."""
        directives, problems = read_memory(self.memory_path).directives()
        usable = []
        for directive in directives:
            reason = self.policy.directive_problem(directive)
            if reason:
                problems.append(
                    Problem(
                        directive.line,
                        f"directive {directive.kind} {directive.key} ignored: {reason}",
                        str(self.memory_path),
                    )
                )
            else:
                usable.append(directive)
        return usable, problems

    def directives(self) -> list[Directive]:
        return self.read_directives()[0]

    def directive_problems(self) -> list[str]:
        """Directives ignored, said once per version of the Directives section (its lines move as memory grows)."""
        section = read_memory(self.memory_path).get(DIRECTIVES)
        if section == self._directives_seen:
            return []
        self._directives_seen = section
        return [str(problem) for problem in self.read_directives()[1]]

    def tree(self, entries: list[Entry]) -> Tree:
        return node_tree(self.spec, entries, self.in_flight_records())

    def ranking(self, tree: Tree) -> list:
        return ranking(self.spec, tree, self.directives())

    def in_flight_records(self) -> list[NodeRecord]:
        """Nodes launched (the journal) or proposed (pending) whose entry is not written yet."""
        records = [Proposal.from_payload(job.slot, job.payload).as_record(job.node_id) for job in self.in_flight()]
        return records + [p.proposal.as_record(p.node_id) for p in self.pending()]

    def policy_state(self, entries: list[Entry]) -> PolicyState:
        return policy_state(self.spec, entries, self.in_flight_records(), self.directives())

    def next_node_id(self, entries: list[Entry]) -> int:
        seen = [self.journal.max_node_id()] + [e.node_id for e in entries] + [p.node_id for p in self.pending()]
        return max(seen) + 1

    def capacity(self, target: int | None = None) -> int:
        """How many more jobs may start: within the budget and the iteration target of this run."""
        committed = len(self.entries()) + len(self.in_flight()) + len(self.pending())
        limit = self.spec.exploration.budget if target is None else min(target, self.spec.exploration.budget)
        return max(0, limit - committed)

    # ------------------------------------------------------------------ one pass

    def step(self, launch: bool = True, propose: bool = True, target: int | None = None) -> StepReport:
        """Refresh, collect, propose, launch; called once by `ucbx step`, in a loop by `run`."""
        report = StepReport(problems=self.directive_problems())
        self.launcher.refresh(self.journal)
        self.collect(report)
        if propose:
            self.propose(report, self.capacity(target))
        if launch and self.launch_pending(report) and propose:  # proposals dropped for a new directive
            self.propose(report, self.capacity(target))
            self.launch_pending(report)
        return report

    def collect(self, report: StepReport) -> None:
        """Write the entry of every finished job not yet in the log, oldest first."""
        for job in sorted(
            self.journal.jobs(status=("done", "failed"), collected=False), key=lambda j: (j.finished_at or 0, j.id)
        ):
            entries = self._entries_without_unfinished_append(job)
            if any(e.node_id == job.node_id and e.slot == job.slot for e in entries):
                self.journal.update(job.id, collected=True)  # written before a crash (a hand note has no Slot)
                continue
            entry = self._entry(job, entries)
            crash_point("log.entry-built")
            start = self.log_path.stat().st_size if self.log_path.exists() else 0
            self.journal.update(job.id, payload={**job.payload, LOG_OFFSET: start})
            crash_point("log.before-append")
            append_entry(self.log_path, entry)
            crash_point("log.after-append")
            self.journal.update(job.id, collected=True)
            crash_point("log.after-collected")
            self._after_entry(entries + [entry], entry)
            report.written.append(entry)

    def _entries_without_unfinished_append(self, job: JobRecord) -> list[Entry]:
        """The log's entries, after setting aside what a crash left of this job's own append.

        The journal holds where the append began (``log_offset``); if what follows is not
        this job's whole entry (its Next line included), it is an unfinished write, cut
        anywhere, and goes to ``<log>.torn`` before the entry is written again.
        """
        offset = job.payload.get(LOG_OFFSET)
        if offset is not None and self.log_path.exists() and self.log_path.stat().st_size > offset:
            appended = parse_notebook(self.log_path.read_bytes()[offset:].decode("utf-8", errors="replace")).entries
            if not any(e.node_id == job.node_id and e.slot == job.slot and e.has_next for e in appended):
                set_aside_from(self.log_path, offset)
        return self.entries()

    def _entry(self, job: JobRecord, entries: list[Entry]) -> Entry:
        proposal = Proposal.from_payload(job.slot, job.payload)
        state = self.policy_state(entries)
        finished = [r for r in state.records if r.finished]
        best_before = max((r.reward for r in finished if r.reward is not None), default=None)
        entry = build_entry(
            self.spec,
            job,
            proposal,
            judge(self.spec, job),
            iteration=len(entries) + 1,
            parent=state.get(proposal.parent),
            best_before=best_before,
            next_parent=None,
            code_version=job.payload.get("code_version", ""),
        )
        after = self.policy_state(entries + [entry])
        next_parent = self.policy.parent_candidates(after)[0]
        entry.next_parent = next_parent.node_id if next_parent else None
        return entry

    def _after_entry(self, entries: list[Entry], entry: Entry) -> None:
        """Memory, scores and the iteration's commit (its run folder included), in that order."""
        state = self.policy_state(entries)
        memory = read_memory(self.memory_path)
        finished = sorted((r for r in state.records if r.finished), key=lambda r: r.iteration)
        update_memory(memory, self.spec, Snapshot(finished, state.pooled, {e.node_id: e.mutation for e in entries}))
        crash_point("memory.before-write")
        write_memory(self.memory_path, memory, log_name=self.log_path.name)
        crash_point("memory.after-write")
        tree = self.tree(entries)
        block = block_range(entry.iteration, self.spec.exploration.n_iter_block)
        header = scores_header(total_visits(tree), self.spec.exploration.ucb_c, (block[0] + 1, block[1], block[2]))
        write_scores(
            self.scores_path,
            self.ranking(tree),
            tree,
            header,
            columns=[(self.spec.objective.primary, self.spec.objective.primary)],
        )
        crash_point("scores.after-write")
        message = (
            f"Iter {entry.iteration}: {entry.status} (node {entry.node_id}, slot_{entry.slot})\n\n{entry.mutation}\n"
        )
        paths = [
            self.log_path,
            self.memory_path,
            self.scores_path,
            self.folder / SPEC_COPY,
            self.folder / BASE_COPY,
            self.slots_dir,
            self.run_dir(entry.node_id),
        ]
        crash_point("git.before-commit")
        self.git.commit(paths, message)
        crash_point("git.after-commit")

    def propose(self, report: StepReport, capacity: int) -> None:
        """A proposal for each free slot, while the capacity lasts."""
        busy = {job.slot for job in self.in_flight()} | {p.slot for p in self.pending()}
        for slot in range(self.spec.n_slots):
            if slot in busy or capacity <= 0:
                continue
            entries = self.entries()
            proposal = self.policy.propose(self.policy_state(entries), slot)
            if proposal is None:
                report.problems.append(f"slot_{slot}: every allowed change of every parent already ran; slot left idle")
                continue
            node_id = self.next_node_id(entries)
            self._write_pending(proposal, node_id)
            report.proposed.append((slot, node_id))
            capacity -= 1

    def run_dir(self, node_id: int) -> Path:
        return self.runs_dir / f"node_{node_id:04d}"

    def slot_config_path(self, slot: int) -> Path:
        return self.slots_dir / f"slot_{slot:02d}.yaml"

    def _base(self, seed: Any) -> dict:
        """The base config with the run's seed (the seed key is not searched, replicates change it)."""
        key = self.spec.trainer.seed_key
        return set_path(self.spec.base, key, seed) if key and seed is not None else self.spec.base

    def _write_pending(self, proposal: Proposal, node_id: int) -> None:
        config = build_slot_config(
            self._base(proposal.seed),
            self.spec.slots,
            proposal.slot,
            proposal.params,
            self.spec.space,
            self.spec.frozen,
        )
        write_config(self.slot_config_path(proposal.slot), config)
        pending = {"slot": proposal.slot, "node_id": node_id, "payload": proposal.to_payload()}
        path = self.slots_dir / f"slot_{proposal.slot:02d}{PENDING_SUFFIX}"
        crash_point("launch.between-config-and-pending")
        write_text_atomic(path, json.dumps(pending, indent=1) + "\n")

    def launch_pending(self, report: StepReport) -> int:
        """Submit every pending slot config, as it is on disk now; the number dropped for breaking a directive."""
        dropped = 0
        for pending in self.pending():
            config_path = self.slot_config_path(pending.slot)
            try:  # the seed stays the agent's: a changed seed is refused
                config = load_config(config_path)
                validate_config(
                    config,
                    self._base(pending.proposal.seed),
                    self.spec.slots,
                    pending.slot,
                    self.spec.space,
                    self.spec.frozen,
                )
            except ConfigError as error:
                report.problems.append(f"{config_path}: {error}; not launched (fix or delete it)")
                continue
            proposal = reconcile(self.spec, pending.proposal, config)
            if not self.policy.allowed(proposal.params, self.directives()):
                pending.path.unlink()
                report.problems.append(
                    f"{config_path}: breaks a directive in {self.memory_path.name}; "
                    "not launched, the slot gets a new proposal"
                )
                dropped += 1
                continue
            run_dir = self.run_dir(pending.node_id)
            write_config(run_dir / "config.yaml", config)
            payload = {**proposal.to_payload(), "code_version": self.code_version}
            crash_point("launch.before-submit")
            self.launcher.submit(
                JobRequest(
                    iteration=pending.node_id,
                    node_id=pending.node_id,
                    slot=pending.slot,
                    parent=proposal.parent,
                    config_path=run_dir / "config.yaml",
                    run_dir=run_dir,
                    command=list(self.spec.trainer.command),
                    payload=payload,
                    metrics_file=self.spec.trainer.metrics_file,
                ),
                self.journal,
            )
            crash_point("launch.after-submit")
            pending.path.unlink()
            report.launched.append((pending.slot, pending.node_id))
        return dropped

    def step_once(self, launch: bool = True, wait: bool = False) -> StepReport:
        """`ucbx step`: under the folder's lock, re-attach, optionally wait for a job to finish, one pass."""
        with FolderLock(self.folder):
            self.prepare()
            self.launcher.recover(self.journal)
            while (
                wait
                and self.journal.jobs(status=IN_FLIGHT)
                and not self.journal.jobs(status=("done", "failed"), collected=False)
            ):
                time.sleep(self.spec.exploration.poll_s)
                self.launcher.refresh(self.journal)
            return self.step(launch=launch)

    # ------------------------------------------------------------------ the daemon

    def run(self, reporter: Reporter, iterations: int | None = None) -> int:
        """Keep every slot busy until the budget (or ``iterations`` more entries) is reached or a signal comes.

        Returns the number of entries written. Holds the folder's lock throughout.
        """
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in STOP_SIGNALS}
        written = 0
        try:
            with FolderLock(self.folder):
                self.prepare()
                self.launcher.recover(self.journal)
                start = len(self.entries())
                target = start + iterations if iterations is not None else None
                while True:
                    report = self.step(launch=not stop.is_set(), propose=not stop.is_set(), target=target)
                    written += len(report.written)
                    reporter.update(self, report)
                    if stop.is_set() or self._finished(target):
                        break
                    stop.wait(self.spec.exploration.poll_s)
                self.stop_local_jobs()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return written

    def _finished(self, target: int | None) -> bool:
        """True when the target or budget is reached, or nothing runs and nothing more can start."""
        done = len(self.entries())
        if done >= self.spec.exploration.budget or (target is not None and done >= target):
            return True
        return not self.in_flight() and not self.pending()

    def stop_local_jobs(self) -> None:
        """End local jobs and queue them again, so the next start reruns them; SLURM jobs keep running."""
        if self.spec.launcher.kind != "local":
            return
        running = self.journal.jobs(status=IN_FLIGHT)
        for job in running:
            self.launcher.cancel(job)
        deadline = time.monotonic() + LOCAL_STOP_WAIT_S
        while any(self.launcher.poll(job).status == "running" for job in running) and time.monotonic() < deadline:
            time.sleep(0.2)
        for job in running:
            self.journal.update(
                job.id,
                status="queued",
                external_id="",
                process_start="",
                submitted_at=time.time(),
                reason="queued again: the driver stopped",
            )


def reconcile(spec: Spec, proposal: Proposal, config: dict) -> Proposal:
    """The proposal as the config on disk says it: a person's edits become its change."""
    params = {p.key: get_path(config, p.key) for p in spec.space}
    if params == proposal.params:
        return proposal
    parent_params = dict(proposal.params)
    if proposal.change is not None and proposal.replicate_of is None:
        parent_params[proposal.change.key] = proposal.change.old
    changed = [key for key in params if params[key] != parent_params[key]]
    change = Change(changed[0], parent_params[changed[0]], params[changed[0]]) if changed else None
    edits = ", ".join(f"{spec.space.get(k).short}={params[k]}" for k in params if params[k] != proposal.params[k])
    return replace(
        proposal,
        params=params,
        change=change,
        replicate_of=None,
        mode=proposal.mode if proposal.replicate_of is None else "exploit",
        rationale=f"{proposal.rationale}; edited before launch: {edits}",
    )


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


def default_folder(spec: Spec) -> Path:
    return Path("runs") / spec.name

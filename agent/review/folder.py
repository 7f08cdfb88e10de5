"""An exploration as its files, read for review: the log, the spec, the run folders, git.

Owns reading an exploration's files without writing (where they are is
agent/folder.py's `ExplorationFolder`). Works on a bare log: the spec, configs and git
history are optional, and what needs them says so.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import git
import yaml

from agent.folder import ExplorationFolder, load_spec_copy
from agent.history import NodeRecord, record_from_entry
from agent.snapshot import replicates_wanted
from agent.spec import Spec
from memory.errors import Problem, UcbxError
from memory.notebook import Entry, parse_mutation, parse_notebook
from slots.config import load_config
from slots.journal import IN_FLIGHT, Journal
from slots.space import Parameter, SearchSpace
from ucb.tree import Tree, score_entry

ALL_SLOTS = "all slots"  # the row or column that pools every slot
LOG_SPAN = 10.0  # an inferred parameter whose positive values span this factor is drawn on a log axis


@dataclass(frozen=True)
class Run:
    """One log entry as a reviewed run: the agent's record of it, and how it went."""

    entry: Entry
    record: NodeRecord  # typed params (by dotted key), change, reward of this run alone
    outcome: str  # ok | guard | diverged | crash | timeout | oom | lost | ...
    strategy: str  # the code strategy in effect (or the Strategy: line)

    @property
    def reward(self) -> float | None:
        return self.record.reward

    @property
    def slot_name(self) -> str:
        return slot_name(self.entry)


def slot_name(entry: Entry) -> str:
    """``slot_1 (homeostasis_time_step=16)``; ``no slot`` for a log without Slot: lines."""
    if entry.slot is None:
        return "no slot"
    return f"slot_{entry.slot} ({entry.slot_label})" if entry.slot_label else f"slot_{entry.slot}"


def outcome_of(entry: Entry, failure: str, guard_failed: str) -> str:
    """What kind of result a run is, for the stability map."""
    text = entry.failure or failure
    if text:
        kind = text.split(":", 1)[0].strip().lower()
        return {"nan": "diverged", "inf": "diverged", "-inf": "diverged", "missing": "crash"}.get(kind, kind)
    if any(not math.isfinite(value) for value in entry.metrics.values()):
        return "diverged"
    return "guard" if guard_failed else "ok"


def inferred_space(entries: list[Entry]) -> SearchSpace:
    """A search space read from the log alone: every Config key and mutated parameter.

    Numbers become float parameters (log-scaled when their positive values span a
    factor of 10 or more); anything else a choice of the values seen.
    """
    values: dict[str, list[str]] = {}
    mutated: Counter[str] = Counter()
    for entry in entries:
        for key, text in entry.config.items():
            values.setdefault(key, []).append(text)
        mutation = parse_mutation(entry.mutation)
        if mutation is not None:
            values.setdefault(mutation.param, []).extend([mutation.old, mutation.new])
            mutated[mutation.param] += 1
    ranked = sorted(values, key=lambda key: -mutated[key])
    return SearchSpace(tuple(_inferred_parameter(key, values[key], ranked.index(key) + 1) for key in values))


def _inferred_parameter(key: str, texts: list[str], priority: int) -> Parameter:
    """Priority follows how often the log mutated the parameter (1 = most often)."""
    numbers = [_number(text) for text in texts]
    if all(number is not None for number in numbers):
        positive = [n for n in numbers if n > 0]
        log = len(positive) == len(numbers) and max(positive) / min(positive) >= LOG_SPAN
        return Parameter(key=key, kind="float", short=key, log=log, priority=priority)
    return Parameter(key=key, kind="choice", short=key, choices=tuple(dict.fromkeys(texts)), priority=priority)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass
class ExplorationFiles:
    """What review reads: the log's entries and tree, and the folder's files when present."""

    folder: Path
    log_path: Path
    layout: ExplorationFolder
    spec: Spec | None = None
    metric: str | None = None  # the raw metric scored when there is no spec
    entries: list[Entry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @classmethod
    def open(
        cls, folder: Path, spec: Spec | None = None, log_path: Path | None = None, metric: str | None = None
    ) -> ExplorationFiles:
        """Read ``folder`` (or the log ``log_path``); without ``spec``, the folder's copy of it."""
        spec = spec or load_spec_copy(folder)
        if log_path:
            layout = ExplorationFolder(folder, ExplorationFolder.of_log(Path(log_path)).name)
            log = Path(log_path)
        else:
            layout = ExplorationFolder(folder, spec.name) if spec else ExplorationFolder.discover(folder)
            log = layout.log
        if not log.is_file():
            raise UcbxError(f"{log}: no analysis log here (is {folder} an exploration folder?)")
        if spec is None and metric is None:
            copy = layout.spec_copy.name
            raise UcbxError(f"{folder}: no {copy} here, so no objective; give --spec SPEC or --metric NAME")
        parse = parse_notebook(log.read_text(encoding="utf-8"), str(log))
        return cls(folder, log, layout, spec, metric, parse.entries, parse.problems)

    @property
    def name(self) -> str:
        return self.spec.name if self.spec else self.layout.name

    @property
    def reward_label(self) -> str:
        """What the y axis of a reward plot says."""
        return "reward (objective, 0 to 1)" if self.spec else f"reward = {self.metric}"

    @cached_property
    def space(self) -> SearchSpace:
        return self.spec.space if self.spec else inferred_space(self.entries)

    @cached_property
    def tree(self) -> Tree:
        objective = self.spec.objective if self.spec else None
        wanted = replicates_wanted(self.spec) if self.spec else 0
        return Tree.from_entries(
            self.entries, objective, self.metric, in_flight=self.in_flight(), replicates_wanted=wanted
        )

    @cached_property
    def runs(self) -> list[Run]:
        objective = self.spec.objective if self.spec else None
        runs = []
        for entry in self.entries:
            reward, failure, _, guard = score_entry(entry, objective, self.metric)
            record = record_from_entry(entry, self.space, reward)
            runs.append(Run(entry, record, outcome_of(entry, failure, guard), self._strategy(entry, record)))
        return runs

    def _strategy(self, entry: Entry, record: NodeRecord) -> str:
        code = next((p for p in self.space if p.code_strategy), None)
        if code is not None and code.key in record.params:
            return str(record.params[code.key])
        return entry.strategy or "not stated"

    def in_flight(self) -> list[tuple[int, int | None]]:
        """(node id, parent) of the jobs the journal says are queued or running."""
        if not self.layout.journal.is_file():
            return []
        journal = Journal(self.folder)
        try:
            return [(job.node_id, job.parent) for job in journal.jobs(status=IN_FLIGHT)]
        finally:
            journal.close()

    def short(self, key: str) -> str:
        parameter = self.space.get(key)
        return parameter.short if parameter else key

    # ------------------------------------------------------------ run folders and configs

    def run_dir(self, node_id: int) -> Path:
        return self.layout.run_dir(node_id)

    def config(self, node_id: int) -> dict[str, Any] | None:
        """The config node ``node_id`` ran, from its run folder, else from the folder's git history."""
        path = self.layout.run_config(node_id)
        if path.is_file():
            return load_config(path)
        text = self.git_file(self.layout.run_config_relative(node_id))
        return yaml.safe_load(text) if text else None

    @cached_property
    def repo(self) -> git.Repo | None:
        try:
            return git.Repo(self.folder)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            return None

    def git_file(self, relative: str, commit: str = "HEAD") -> str | None:
        """A file's text as committed (None outside git or when it was never committed)."""
        if self.repo is None:
            return None
        try:
            return self.repo.git.show(f"{commit}:{relative}")
        except git.GitCommandError:
            return None

    def commit_of(self, entry: Entry) -> git.Commit | None:
        """The commit that recorded ``entry`` (its message starts ``Iter N:``)."""
        if self.repo is None or not self.repo.head.is_valid():
            return None
        prefix = f"Iter {entry.iteration}:"
        return next((c for c in self.repo.iter_commits() if c.message.startswith(prefix)), None)

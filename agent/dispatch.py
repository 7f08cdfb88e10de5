"""Free slots get a proposal; pending proposals are launched.

Propose: each free slot (no job in flight, no pending proposal) gets the policy's
proposal, written as its config ``slots/slot_SS.yaml`` with the proposal beside it
(``slot_SS.pending.json``); the node id is given here (one more than any id seen) and
never reused. Launch: each pending slot config is read back (a person may have edited
it: `reconcile` makes every edit part of the node's change), validated, copied to
``iterations/node_NNNN/config.yaml`` and submitted. A config that breaks a directive is
dropped and its slot proposed for again.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from agent.folder import ExplorationFolder
from agent.history import Change, Proposal
from agent.policy import Policy
from agent.reader import FolderReader
from agent.snapshot import Snapshot
from agent.spec import Spec
from memory.atomic import write_text_atomic
from memory.crash import crash_point
from memory.errors import ConfigError
from slots.config import build_slot_config, get_path, load_config, set_path, validate_config, write_config
from slots.journal import Journal
from slots.launcher import JobRequest, Launcher


class Dispatcher:
    """Fills free slots with proposals and launches them."""

    def __init__(
        self,
        spec: Spec,
        folder: ExplorationFolder,
        journal: Journal,
        reader: FolderReader,
        policy: Policy,
        launcher: Launcher,
    ):
        self.spec = spec
        self.folder = folder
        self.journal = journal
        self.reader = reader
        self.policy = policy
        self.launcher = launcher

    def remove_launched_pending(self) -> None:
        """Pending files of proposals launched just before a crash: the slot is the journal's now."""
        for pending in self.reader.pending():
            if self.journal.by_iteration(pending.node_id) is not None:
                pending.path.unlink()

    def propose(self, snapshot: Snapshot, capacity: int) -> tuple[list[tuple[int, int]], list[str]]:
        """A proposal for each free slot while ``capacity`` lasts: (slot, node id) pairs, and problems."""
        busy = {job.slot for job in self.reader.uncollected()} | {p.slot for p in self.reader.pending()}
        proposed, problems = [], []
        for slot in range(self.spec.n_slots):
            if slot in busy or capacity <= 0:
                continue
            proposal = self.policy.propose(snapshot, slot)
            if proposal is None:
                problems.append(f"slot_{slot}: every allowed change of every parent already ran; slot left idle")
                continue
            node_id = self.next_node_id(snapshot)
            self._write_pending(proposal, node_id)
            snapshot.add_in_flight(proposal.as_record(node_id))
            proposed.append((slot, node_id))
            capacity -= 1
        return proposed, problems

    def next_node_id(self, snapshot: Snapshot) -> int:
        seen = [self.journal.max_node_id()] + [r.node_id for r in snapshot.records]
        return max(seen) + 1

    def base(self, seed: Any) -> dict:
        """The base config with the run's seed (the seed key is not searched, replicates change it)."""
        key = self.spec.trainer.seed_key
        return set_path(self.spec.base, key, seed) if key and seed is not None else self.spec.base

    def _write_pending(self, proposal: Proposal, node_id: int) -> None:
        config = build_slot_config(
            self.base(proposal.seed), self.spec.slots, proposal.slot, proposal.params, self.spec.space, self.spec.frozen
        )
        write_config(self.folder.slot_config(proposal.slot), config)
        pending = {"slot": proposal.slot, "node_id": node_id, "payload": proposal.to_payload()}
        crash_point("launch.between-config-and-pending")
        write_text_atomic(self.folder.pending(proposal.slot), json.dumps(pending, indent=1) + "\n")

    def launch(self, code_version: str) -> tuple[list[tuple[int, int]], list[str], int]:
        """Submit every pending slot config as it is on disk now: (slot, node id) launched, problems,
        and how many were dropped for breaking a directive (their slots get a new proposal)."""
        launched, problems, dropped = [], [], 0
        directives = self.reader.directives()[0]
        for pending in self.reader.pending():
            config_path = self.folder.slot_config(pending.slot)
            try:  # the seed stays the agent's: a changed seed is refused
                config = load_config(config_path)
                validate_config(
                    config,
                    self.base(pending.proposal.seed),
                    self.spec.slots,
                    pending.slot,
                    self.spec.space,
                    self.spec.frozen,
                )
            except ConfigError as error:
                problems.append(f"{config_path}: {error}; not launched (fix or delete it)")
                continue
            proposal = reconcile(self.spec, pending.proposal, config)
            if not self.policy.rules.allowed(proposal.params, directives):
                pending.path.unlink()
                problems.append(
                    f"{config_path}: breaks a directive in {self.folder.memory.name}; "
                    "not launched, the slot gets a new proposal"
                )
                dropped += 1
                continue
            self._submit(pending.slot, pending.node_id, proposal, config, code_version)
            pending.path.unlink()
            launched.append((pending.slot, pending.node_id))
        return launched, problems, dropped

    def _submit(self, slot: int, node_id: int, proposal: Proposal, config: dict, code_version: str) -> None:
        write_config(self.folder.run_config(node_id), config)
        payload = {**proposal.to_payload(), "code_version": code_version}
        crash_point("launch.before-submit")
        self.launcher.submit(
            JobRequest(
                iteration=node_id,
                node_id=node_id,
                slot=slot,
                parent=proposal.parent,
                config_path=self.folder.run_config(node_id),
                run_dir=self.folder.run_dir(node_id),
                command=list(self.spec.trainer.command),
                payload=payload,
                metrics_file=self.spec.trainer.metrics_file,
            ),
            self.journal,
        )
        crash_point("launch.after-submit")


def reconcile(spec: Spec, proposal: Proposal, config: dict) -> Proposal:
    """The proposal as the config on disk says it: a person's edits become part of its changes.

    Every searched value that differs from the parent's is one change (in search-space
    order), so the Mutation line lists them all; with more than one, no single parameter
    is credited with the result (`NodeRecord.change` is None).
    """
    params = {p.key: get_path(config, p.key) for p in spec.space}
    if params == proposal.params:
        return proposal
    parent_params = dict(proposal.params)
    if proposal.replicate_of is None:
        for change in proposal.changes:
            parent_params[change.key] = change.old
    changes = tuple(Change(key, parent_params[key], params[key]) for key in params if params[key] != parent_params[key])
    edits = ", ".join(f"{spec.space.get(k).short}={params[k]}" for k in params if params[k] != proposal.params[k])
    return replace(
        proposal,
        params=params,
        changes=changes,
        replicate_of=None,
        mode=proposal.mode if proposal.replicate_of is None else "exploit",
        rationale=f"{proposal.rationale}; edited before launch: {edits}",
    )

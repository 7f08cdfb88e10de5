"""The mode of a decision: what kind of change to make when branching from a parent.

In this order: a generic rule that serves any trainer (the parent's last child diverged:
learning rate down, clipping tighter, for the float parameters named so:
`DIVERGED_PARAMS`), then the playbook's table (agent/playbooks/ or a file beside the
spec), then a generic "flat metric over the last children: a bigger step", then the
playbook's default.
"""

from __future__ import annotations

import math
import re

from agent.evidence import DIVERGED
from agent.history import NodeRecord
from agent.playbook import Action, Playbook, Preference
from agent.snapshot import Snapshot
from agent.spec import Spec
from slots.space import Parameter

# After a divergence: float parameters whose name has these words (as whole words) go down.
DIVERGED_PARAMS = ((("learning", "rate"), "down"), (("lr",), "down"), (("clip",), "down"), (("grad", "norm"), "down"))
NOT_A_RATE = {"warmup", "steps", "step", "epochs", "patience", "schedule"}  # lr_warmup_steps is no learning rate
FLAT_CHILDREN = 2  # children with an unchanged primary metric before a bigger step
FLAT_TOLERANCE = 0.01


class ModeRules:
    """The action for branching from a parent, for one spec and playbook."""

    def __init__(self, spec: Spec, playbook: Playbook):
        self.spec = spec
        self.playbook = playbook

    def decide(self, snapshot: Snapshot, parent: NodeRecord | None, generic: bool = True) -> Action:
        """The action for branching from ``parent``: generic diverged rule, playbook, generic flat rule.

        ``generic=False``: the playbook alone (the acquisition engine's surrogate already knows what
        the generic rules encode: where runs diverged and where the metric is flat).
        """
        children = snapshot.children.get(parent.node_id if parent else None, [])
        if not generic:
            return self.playbook.decide(parent, snapshot.finished)
        if children and children[-1].failure.startswith(DIVERGED):
            return self._after_divergence(children[-1])
        action = self.playbook.decide(parent, snapshot.finished)
        if action is self.playbook.default and parent is not None and self._flat(parent, children):
            return Action(
                mode="explore",
                step="big",
                prefer=action.prefer,
                rule=f"{self.spec.objective.primary} flat over {len(children)} children: bigger step",
            )
        return action

    def _after_divergence(self, child: NodeRecord) -> Action:
        """A diverged child: learning rate down, clipping tighter.

        The diverged value stays barred, see `CandidateRanker.candidates`.
        """
        prefer = tuple(
            Preference(p.key, direction)
            for p in self.spec.space
            for words, direction in DIVERGED_PARAMS
            if _named(p, words)
        )
        return Action(
            mode="exploit",
            step="normal",
            prefer=prefer,
            rule=f"child {child.node_id} diverged: learning rate down, clipping tighter",
        )

    def _flat(self, parent: NodeRecord, children: list[NodeRecord]) -> bool:
        primary = self.spec.objective.primary
        reference = parent.metrics.get(primary, math.nan)
        recent = [c.metrics.get(primary, math.nan) for c in children[-FLAT_CHILDREN:]]
        return (
            len(recent) == FLAT_CHILDREN
            and not math.isnan(reference)
            and all(abs(v - reference) <= FLAT_TOLERANCE * max(1.0, abs(reference)) for v in recent)
        )


def _named(parameter: Parameter, words: tuple[str, ...]) -> bool:
    """True when a float parameter's name holds ``words`` as consecutive whole words (and is no count)."""
    if parameter.kind != "float":
        return False
    tokens = [t for t in re.split(r"[^a-z0-9]+", parameter.key.lower().split(".")[-1]) if t]
    if NOT_A_RATE.intersection(tokens):
        return False
    size = len(words)
    return any(tuple(tokens[i : i + size]) == words for i in range(len(tokens) - size + 1))

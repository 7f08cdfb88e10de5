"""`<name>_analysis.md`: the append-only log of iterations, one `## Iter N` entry each.

Owns the `Entry` record, its writer and its parser (tolerant of hand- and LLM-written
variants; an entry with an id is never dropped silently).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ROOT_WORDS = ("root", "none", "0")


@dataclass
class Entry:
    """One iteration of the log, exactly the lines of DESIGN.md's entry shape."""

    iteration: int
    status: str                                   # converged | partial | failed | other word seen
    node_id: int                                  # "Node: id=N" is authoritative for the tree
    parent: int | None                            # None = root
    mode: str = ""
    slot: int | None = None
    slot_label: str = ""                          # "homeostasis_time_step=4"
    config: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    visual: str = ""
    mutation: str = ""                            # "lr_node_homeo: 0.01 -> 0.03"
    strategy: str = ""
    observation: str = ""
    next_parent: int | None = None
    failure: str = ""                             # "diverged: nan in phase2_loss" for failed jobs
    extra: dict[str, str] = field(default_factory=dict)
    line: int = 0                                 # 1-based line of the header in its file

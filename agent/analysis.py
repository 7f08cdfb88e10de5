"""Result analysis: a finished job becomes one log entry.

Classification by the spec's objective (bands on the primary metric, guards); a job
failure (crash, timeout, oom, diverged, lost, cancelled) stays a failure with its kind.
The Visual line comes from the run's `visual.json` through the trainer's describe
module named by the spec (`trainers/<describe>/describe.py: describe_visual(dict) -> str`).
The Observation line is computed from the change against the parent.
"""

from __future__ import annotations

import importlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from agent.history import NodeRecord, Proposal, config_line, format_value
from agent.spec import Spec
from memory.analysis_log import read_metrics
from memory.errors import ParseError
from memory.notebook import Entry, as_logged, format_number
from memory.progress import read_run_progress
from slots.journal import JobRecord
from ucb.rewards import FAILED, Score

VISUAL_FILE = "visual.json"
PRUNED = "pruned"  # the failure kind of a run stopped early (agent/pruning.py)


@dataclass(frozen=True)
class Outcome:
    """What a finished job gave: its metrics, status, reward, and the failure text if any."""

    metrics: dict[str, float]
    status: str
    reward: float | None
    failure: str = ""
    guard_failed: str = ""


def outcome_of(spec: Spec, metrics: dict[str, float], failure: str = "") -> Outcome:
    """The outcome of a run's metrics: a job ``failure`` ("kind: reason") stays a failure with no
    reward; otherwise the objective's classification and reward (by `judge`, and by the benchmarks)."""
    if failure:
        return Outcome(metrics, FAILED, None, failure)
    score: Score = spec.objective.score(metrics)
    return Outcome(metrics, score.classification, score.reward, score.failure, score.guard_failed)


def judge(spec: Spec, job: JobRecord) -> Outcome:
    """Metrics, classification and reward of a finished job; job failures keep their kind.

    A job stopped early (failure kind ``pruned``) has the metrics of its progress lines: each metric's
    latest value (a metric reported only at checkpoints keeps the last checkpoint's value).
    """
    progress = read_run_progress(job.run_dir, spec.trainer.metrics_file) if job.failure_kind == PRUNED else None
    try:
        if progress is not None and progress.points:
            metrics = progress.latest_metrics
        else:
            metrics = read_metrics(Path(job.run_dir) / spec.trainer.metrics_file)
    except ParseError:
        metrics = {}
    failure = ""
    if job.status == "failed":
        kind = job.failure_kind or "crash"
        failure = f"{kind}: {job.reason}" if job.reason else kind
    return outcome_of(spec, as_logged(metrics), failure)


def visual_line(spec: Spec, run_dir: Path) -> str:
    """The Visual line from ``run_dir/visual.json``, or why there is none."""
    if not spec.trainer.describe:
        return "none (the spec names no trainer.describe)"
    path = run_dir / VISUAL_FILE
    if not path.is_file():
        return f"none (the run wrote no {VISUAL_FILE})"
    try:
        visual = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return f"unreadable {VISUAL_FILE} ({error})"
    module = importlib.import_module(f"trainers.{spec.trainer.describe}.describe")
    try:
        return module.describe_visual(visual)
    except Exception as error:  # a describe bug must not stop a weekend of runs
        return f"unavailable (describe_visual raised {type(error).__name__}: {error})"


def _show(value: float | None) -> str:
    if value is None:
        return "failed"
    return f"{value:.3g}" if math.isfinite(value) else format_number(value)


def observation(
    spec: Spec, proposal: Proposal, outcome: Outcome, parent: NodeRecord | None, best_before: float | None
) -> str:
    """One line: what changed against the parent, and what it did to the primary metric and reward."""
    primary = spec.objective.primary
    value = outcome.metrics.get(primary, math.nan)
    if proposal.replicate_of is not None:
        what = f"replicate of node {proposal.replicate_of}"
    elif not proposal.changes:
        what = f"baseline of {spec.slots.label(proposal.slot)}"
    else:
        what = ", ".join(
            f"{spec.space.get(c.key).short} {format_value(c.old)} -> {format_value(c.new)}" for c in proposal.changes
        )
    if outcome.failure:
        return f"{outcome.failure} after {what}"
    if parent is None or (not proposal.changes and proposal.replicate_of is None):
        text = f"{what}: {primary}={_show(value)}, reward {_show(outcome.reward)}"
    else:
        before = parent.metrics.get(primary, math.nan)
        delta = value - before
        text = (
            f"{primary} {_show(before)} -> {_show(value)} ({delta:+.3g}) after {what}; "
            f"reward {_show(parent.reward)} -> {_show(outcome.reward)}"
        )
    if outcome.guard_failed:
        text += f"; guard {outcome.guard_failed} failed"
    if outcome.reward is not None and (best_before is None or outcome.reward > best_before):
        text += "; best reward so far"
    return text


def build_entry(
    spec: Spec,
    job: JobRecord,
    proposal: Proposal,
    outcome: Outcome,
    *,
    iteration: int,
    parent: NodeRecord | None,
    best_before: float | None,
    next_parent: int | None,
    code_version: str,
) -> Entry:
    """The `## Iter N` entry of a finished job, every line of seed 003's shape."""
    extra = {"Rationale": proposal.rationale} if proposal.rationale else {}
    if code_version:
        extra["Code"] = code_version
    return Entry(
        iteration=iteration,
        status=outcome.status,
        node_id=job.node_id,
        parent=proposal.parent,
        mode=proposal.mode,
        slot=proposal.slot,
        slot_label=spec.slots.label(proposal.slot),
        config=config_line(spec.space, proposal.params, proposal.seed),
        metrics=outcome.metrics,
        visual=visual_line(spec, Path(job.run_dir)),
        mutation=proposal.mutation_text(spec.space),
        strategy=proposal.strategy,
        observation=observation(spec, proposal, outcome, parent, best_before),
        next_parent=next_parent,
        failure=outcome.failure,
        extra=extra,
    )

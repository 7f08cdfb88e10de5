"""Stopping runs that cannot win (``exploration.pruning``), from what they say while they train.

Each pass, after the finished jobs are written, the `Pruner` reads the progress of every
running job (memory/progress.py; the launcher reads it from the run folder) and judges
each progress line it has not judged yet, oldest first, by the spec's rule:

- ``none``: nothing is stopped (the default);
- ``median``: at a line at fraction f >= ``min_fraction`` (and below 1: the last line comes
  when the training is over, and stopping then would save nothing), the run's value is below
  the median of the values at f of the earlier runs of its slot (at least ``min_runs`` of them
  reached f);
- ``asha``: successive halving per slot, asynchronously: rungs at fractions
  ``min_fraction * eta**k`` below 1; a run that reaches a rung goes on only if its value
  there is within the top ``1/eta`` of the values of the slot's runs at that rung (itself
  included; at least ``min_runs`` earlier runs there).

A run's value at a line is the objective's reward of the line's metrics, or the named
``metric`` (its ``goal`` says which way is better); values at a fraction between two lines
are interpolated. Never stopped: a replicate of the best node or of the leader; a run whose
value at f is within (or above) the spread of its parent's runs at f; a run that writes
no progress (said once). The stop goes through `Launcher.stop`: the decision and its
numbers are in the journal before the job is asked to end, so a restart neither loses it
nor decides again. The job's entry is then written as any finished job's: failed, failure
kind ``pruned`` (agent/analysis.py takes its Metrics from the last progress line).

Lines are judged once, as they are first read; after a restart a running job's lines are
judged again against the earlier runs as they are then.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from agent.analysis import PRUNED
from agent.folder import ExplorationFolder
from agent.history import Proposal
from agent.snapshot import Snapshot
from agent.spec import PruningSettings, Spec
from memory.progress import ProgressPoint, read_run_progress, value_at
from slots.journal import IN_FLIGHT, JobRecord, Journal
from slots.launcher import Launcher

Value = Callable[[ProgressPoint], float | None]


@dataclass(frozen=True)
class Verdict:
    """A rule's judgement of one progress line: stop or not, and the numbers behind it."""

    stop: bool
    fraction: float
    value: float
    threshold: float
    runs: int  # the earlier runs compared with
    rule: str

    def numbers(self, point: ProgressPoint, settings: PruningSettings) -> dict:
        """What the journal keeps of the decision (values as the metric reads)."""
        return {
            "rule": self.rule,
            "fraction": round(self.fraction, 6),
            "step": point.step,
            "of": point.of,
            "value": shown(settings, self.value),
            "threshold": shown(settings, self.threshold),
            "runs": self.runs,
            "metric": settings.metric or "reward",
        }


def point_value(spec: Spec) -> Value:
    """What a progress line is worth: the objective's reward of its metrics, or the pruning metric
    (negated when lower is better); None when it cannot be said (missing, nan)."""
    pruning = spec.exploration.pruning
    if not pruning.metric:
        return lambda point: spec.objective.score(point.metrics).reward
    sign = 1.0 if pruning.goal == "maximize" else -1.0

    def metric_value(point: ProgressPoint) -> float | None:
        value = point.metrics.get(pruning.metric)
        return sign * value if value is not None and math.isfinite(value) else None

    return metric_value


def rungs(settings: PruningSettings) -> list[float]:
    """ASHA's rung fractions: ``min_fraction * eta**k`` below 1."""
    found, fraction = [], settings.min_fraction
    while fraction < 1 - 1e-9:
        found.append(fraction)
        fraction *= settings.eta
    return found


def judge_median(settings: PruningSettings, fraction: float, value: float, earlier: list[float]) -> Verdict | None:
    """Stop when ``value`` is below the median of ``earlier`` (values of earlier runs at ``fraction``).

    Never at the last line (fraction 1): the training is over, a stop would save nothing and lose the result.
    """
    if fraction < settings.min_fraction or fraction >= 1.0 or len(earlier) < settings.min_runs:
        return None
    median = statistics.median(earlier)
    return Verdict(value < median, fraction, value, median, len(earlier), "median")


def judge_rung(settings: PruningSettings, rung: float, value: float, earlier: list[float]) -> Verdict | None:
    """Stop when ``value`` is not within the top 1/eta of the rung's values (``earlier`` and itself)."""
    if len(earlier) < settings.min_runs:
        return None
    ranked = sorted([*earlier, value], reverse=True)
    keep = max(1, math.floor(len(ranked) / settings.eta))
    cut = ranked[keep - 1]
    return Verdict(value < cut, rung, value, cut, len(earlier), "asha")


def shown(settings: PruningSettings, value: float) -> float:
    """A value as the person reads it: the metric itself (a minimized metric was negated to judge it)."""
    return -value if settings.metric and settings.goal == "minimize" else value


def describe(verdict: Verdict, point: ProgressPoint, slot: str, settings: PruningSettings) -> str:
    """The failure text of a stop: at which fraction, which value, against what."""
    what = settings.metric or "reward"
    worse = "above" if settings.metric and settings.goal == "minimize" else "below"
    value, threshold = shown(settings, verdict.value), shown(settings, verdict.threshold)
    at = f"at {verdict.fraction:.0%} (step {point.step:g}/{point.of:g})"
    if verdict.rule == "median":
        against = f"{worse} the median {threshold:.4g} of {verdict.runs} earlier runs of {slot} there"
    else:
        against = (
            f"{worse} the rung's cut {threshold:.4g} (the top 1/{settings.eta:g} of "
            f"{verdict.runs} earlier runs of {slot} and this one)"
        )
    return f"{at}: {what} {value:.4g} {against}"


class Pruner:
    """Reads the progress of running jobs each pass and stops the ones the rule gives up on."""

    def __init__(self, spec: Spec, folder: ExplorationFolder, journal: Journal, launcher: Launcher):
        self.spec = spec
        self.settings = spec.exploration.pruning
        self.folder = folder
        self.journal = journal
        self.launcher = launcher
        self.value = point_value(spec)
        self.judged: dict[int, float] = {}  # job id -> the last step judged
        self.curves: dict[int, list[ProgressPoint]] = {}  # finished node id -> its progress points
        self.said: set[str] = set()
        self.silent_said = False

    @property
    def active(self) -> bool:
        return self.settings.rule != "none"

    # ------------------------------------------------------------ one pass

    def check(self, snapshot: Snapshot, running: list[JobRecord]) -> tuple[list[JobRecord], list[str]]:
        """Judge the new progress of each running job: the jobs stopped now, and what to say (once each)."""
        stopped, problems = [], []
        for job in running:
            if job.status not in IN_FLIGHT:
                continue  # a job the journal still calls queued is judged too: SLURM's state can lag its first lines
            if job.stop:
                self.launcher.stop(job, self.journal, PRUNED, job.stop.get("reason", ""), {})  # asked once only
                continue
            progress = self.launcher.progress(job)
            problems += [warning for warning in progress.warnings if self._first(warning)]
            if not self.active or not progress.points:
                continue
            verdict, point = self._judge(snapshot, job, progress.points)
            if verdict is None:
                continue
            label = self.spec.slots.label(job.slot)
            reason = describe(verdict, point, f"slot_{job.slot} ({label})", self.settings)
            stopped.append(self.launcher.stop(job, self.journal, PRUNED, reason, verdict.numbers(point, self.settings)))
        return stopped, problems

    def note_finished(self, jobs: list[JobRecord]) -> list[str]:
        """Said once: a finished run that wrote no progress is a trainer that is never stopped early."""
        for job in jobs:
            if self.silent_said or read_run_progress(job.run_dir, job.metrics_file).exists:
                continue
            self.silent_said = True
            return [
                f"node {job.node_id} wrote no progress (run_dir/progress.jsonl, see the README): "
                "runs of this trainer show no progress bar and are never stopped early"
            ]
        return []

    def _first(self, text: str) -> bool:
        if text in self.said:
            return False
        self.said.add(text)
        return True

    # ------------------------------------------------------------ the rules

    def _judge(
        self, snapshot: Snapshot, job: JobRecord, points: list[ProgressPoint]
    ) -> tuple[Verdict | None, ProgressPoint | None]:
        """The first new line the rule stops the job at (None when it goes on), lines judged once."""
        last = self.judged.get(job.id, -1.0)
        fresh = [point for point in points if point.step > last]
        if not fresh:
            return None, None
        self.judged[job.id] = fresh[-1].step
        if self._protected_replicate(snapshot, job):
            return None, None
        previous = [point.fraction for point in points if point.step <= last]
        reached = previous[-1] if previous else -1.0
        for point in fresh:
            verdict = self._verdict(snapshot, job, points, point, reached)
            reached = point.fraction
            if verdict is not None and verdict.stop and not self._within_parent(snapshot, job, verdict):
                return verdict, point
        return None, None

    def _verdict(
        self, snapshot: Snapshot, job: JobRecord, points: list[ProgressPoint], point: ProgressPoint, reached: float
    ) -> Verdict | None:
        if self.settings.rule == "median":
            value = self.value(point)
            if value is None:
                return None
            return judge_median(self.settings, point.fraction, value, self._earlier(snapshot, job, point.fraction))
        for rung in rungs(self.settings):  # asha: the rungs this line reaches first
            if reached < rung <= point.fraction:
                value = value_at(points, rung, self.value)
                verdict = (
                    None
                    if value is None
                    else judge_rung(self.settings, rung, value, self._earlier(snapshot, job, rung))
                )
                if verdict is not None and verdict.stop:
                    return verdict
        return None

    def _earlier(self, snapshot: Snapshot, job: JobRecord, fraction: float) -> list[float]:
        """Values at ``fraction`` of the finished runs of the job's slot (stopped ones included)."""
        values = []
        for record in snapshot.finished:
            if record.slot != job.slot:
                continue
            value = value_at(self._curve(record.node_id), fraction, self.value)
            if value is not None:
                values.append(value)
        return values

    def _curve(self, node_id: int) -> list[ProgressPoint]:
        """A finished run's progress points (read once: a finished run's file no longer changes)."""
        if node_id not in self.curves:
            run_dir = self.folder.run_dir(node_id)
            self.curves[node_id] = read_run_progress(run_dir, self.spec.trainer.metrics_file).points
        return self.curves[node_id]

    def _protected_replicate(self, snapshot: Snapshot, job: JobRecord) -> bool:
        """A replicate of the best node or of the leader is never stopped."""
        replicate_of = Proposal.from_payload(job.slot, job.payload).replicate_of
        if replicate_of is None:
            return False
        return any(node is not None and node.id == replicate_of for node in (snapshot.best, snapshot.leader))

    def _within_parent(self, snapshot: Snapshot, job: JobRecord, verdict: Verdict) -> bool:
        """True when the job's value is within or above the spread of its parent's runs at that fraction."""
        parent = Proposal.from_payload(job.slot, job.payload).parent
        if parent is None:
            return False
        runs = [r.node_id for r in snapshot.finished if r.node_id == parent or r.replicate_of == parent]
        values = [value_at(self._curve(node_id), verdict.fraction, self.value) for node_id in runs]
        values = [value for value in values if value is not None]
        return bool(values) and verdict.value >= min(values)

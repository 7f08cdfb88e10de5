"""Search efficiency: every searcher on the same task, budget, slots and seeds.

One campaign = one searcher, one task, one seed, ``budget`` trials through the task's
slots on a simulated clock: each slot is asked for a trial when it frees, a trial
occupies its slot for the slot's duration (`Task.durations`, e.g. 4/16/32/64), and the
slot that frees first reports first. The trainings themselves run one after another,
so the asynchronous order (and the in-flight nodes each decision sees) is the one real
slots would produce while the full run stays affordable on 2 cores.

Per campaign: the best-so-far curve and the iterations to the first converged trial.
"Best" is the noise-free reward of the config the searcher would hand over: the one
with the highest mean observed reward (seed replicates pooled); for deterministic tasks
that is simply the best observed reward. Per task and searcher: median and quartiles
over seeds, and the ratio ucbx / peer of the medians.
"""

from __future__ import annotations

import heapq
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from benchmarks.searchers import SEARCHERS
from benchmarks.tasks import SYNTHETIC, Task, make_task


@dataclass
class Campaign:
    """One searcher's run on one task and seed."""

    task: str
    searcher: str
    seed: int
    budget: int
    rewards: list[float | None] = field(default_factory=list)       # noise-free reward per trial, log order
    best_so_far: list[float] = field(default_factory=list)          # of the recommended config
    first_converged: int | None = None                               # 1-based iteration
    failures: int = 0
    seconds: float = 0.0                                             # decision + evaluation wall time

    @property
    def best(self) -> float:
        return self.best_so_far[-1] if self.best_so_far else 0.0


class Recommendation:
    """The config a searcher would hand over: highest mean observed reward over its runs."""

    def __init__(self) -> None:
        self.observed: dict[tuple, list[float]] = {}
        self.true: dict[tuple, float] = {}

    def add(self, key: tuple, observed: float | None, true: float | None) -> float:
        if observed is not None and true is not None:
            self.observed.setdefault(key, []).append(observed)
            self.true[key] = true
        if not self.observed:
            return 0.0
        best = max(self.observed, key=lambda k: statistics.fmean(self.observed[k]))
        return self.true[best]


def run_campaign(task: Task, searcher_name: str, seed: int, budget: int) -> Campaign:
    """``budget`` trials of one searcher, slots refilled as soon as they free."""
    started = time.perf_counter()
    searcher = SEARCHERS[searcher_name](task, seed, budget)
    campaign = Campaign(task.name, searcher_name, seed, budget)
    recommendation, clock, launched = Recommendation(), [], 0

    def launch(slot: int, now: float) -> None:
        nonlocal launched
        trial = searcher.ask(slot) if launched < budget else None
        if trial is not None:
            launched += 1
            heapq.heappush(clock, (now + task.durations[slot], slot, launched, trial))

    for slot in range(task.spec.n_slots):
        launch(slot, 0.0)
    while clock:
        now, slot, _, trial = heapq.heappop(clock)
        evaluation = task.evaluate(trial.params, slot, trial.seed)
        searcher.tell(trial, evaluation.metrics)
        record(campaign, task, recommendation, trial, evaluation)
        launch(slot, now)
    campaign.seconds = time.perf_counter() - started
    return campaign


def record(campaign: Campaign, task: Task, recommendation: Recommendation, trial, evaluation) -> None:
    objective = task.spec.objective
    observed = objective.score(evaluation.metrics).reward
    true = objective.score(evaluation.true_metrics).reward
    key = (trial.slot, tuple(sorted((k, repr(v)) for k, v in trial.params.items())))
    campaign.rewards.append(true)
    campaign.failures += observed is None
    campaign.best_so_far.append(recommendation.add(key, observed, true))
    if campaign.first_converged is None and task.converged(evaluation.true_metrics):
        campaign.first_converged = len(campaign.rewards)


def tasks_by_seed(name: str, folder: Path) -> Callable[[int], Task]:
    """Synthetic landscapes are drawn per seed; a trainer task is built once (its results are reused)."""
    if name in SYNTHETIC:
        return lambda seed: make_task(name, seed, folder)
    task = make_task(name, 0, folder)
    return lambda seed: task


def run_search(task_names: list[str], searcher_names: list[str], seeds: list[int], budget: int, folder: Path,
               progress: Callable[[str], None] = print) -> list[Campaign]:
    """Every (task, seed, searcher) campaign, seeds outermost within a task."""
    from benchmarks.searchers import available
    campaigns = []
    for name in task_names:
        task_for = tasks_by_seed(name, folder)
        names, skipped = available(searcher_names, task_for(seeds[0]).spec)
        for searcher, reason in skipped.items():
            progress(f"{name}: {searcher} skipped: {reason}")
        for seed in seeds:
            task = task_for(seed)
            for searcher in names:
                campaign = run_campaign(task, searcher, seed, budget)
                campaigns.append(campaign)
                progress(f"{name} seed {seed} {searcher}: best {campaign.best:.3f}, first converged "
                         f"{campaign.first_converged}, {campaign.seconds:.1f} s")
    return campaigns


# ---------------------------------------------------------------------- summaries

@dataclass(frozen=True)
class Summary:
    """Median and quartiles over seeds of one searcher on one task."""

    task: str
    searcher: str
    seeds: int
    best: tuple[float, float, float]                 # q25, median, q75
    converged_at: tuple[float, float, float]         # iterations; budget + 1 when never converged
    reached: int                                     # seeds that converged within the budget
    seconds: float                                   # median campaign wall time


def quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def summarise(campaigns: list[Campaign]) -> list[Summary]:
    groups: dict[tuple[str, str], list[Campaign]] = {}
    for campaign in campaigns:
        groups.setdefault((campaign.task, campaign.searcher), []).append(campaign)
    return [Summary(task, searcher, len(group), quartiles([c.best for c in group]),
                    quartiles([float(c.first_converged or c.budget + 1) for c in group]),
                    sum(c.first_converged is not None for c in group),
                    statistics.median(c.seconds for c in group))
            for (task, searcher), group in groups.items()]


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("inf")


def table(summaries: list[Summary], reference: str = "ucbx") -> str:
    """Markdown: per task and searcher, best and iterations to converged, and ucbx / peer."""
    lines = ["| task | searcher | best reward: median [q25, q75] | iters to converged: median [q25, q75] "
             "| converged seeds | ucbx/peer best | ucbx/peer iters | s/campaign |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    refs = {s.task: s for s in summaries if s.searcher == reference}
    for s in summaries:
        ref = refs.get(s.task)
        best_ratio = f"{ratio(ref.best[1], s.best[1]):.2f}" if ref and s is not ref else "-"
        iter_ratio = f"{ratio(ref.converged_at[1], s.converged_at[1]):.2f}" if ref and s is not ref else "-"
        lines.append(f"| {s.task} | {s.searcher} | {s.best[1]:.3f} [{s.best[0]:.3f}, {s.best[2]:.3f}] | "
                     f"{s.converged_at[1]:.0f} [{s.converged_at[0]:.0f}, {s.converged_at[2]:.0f}] | "
                     f"{s.reached}/{s.seeds} | {best_ratio} | {iter_ratio} | {s.seconds:.1f} |")
    return "\n".join(lines)


def as_json(campaigns: list[Campaign]) -> list[dict[str, Any]]:
    return [asdict(c) for c in campaigns]

"""Search efficiency: every searcher on the same task, budget, slots and seeds.

One campaign = one searcher, one task, one seed, ``budget`` trials through the task's
slots on a simulated clock: each slot is asked for a trial when it frees, a trial
occupies its slot for the slot's duration (`Task.durations`, e.g. 4/16/32/64), and the
slot that frees first reports first. Results reach the searcher in simulated-clock
order, whatever the real training times, so the asynchronous order (and the in-flight
nodes each decision sees) is the one real slots would produce while the full run stays
affordable on 2 cores. Trainer tasks start a training in a worker pool when its trial is
launched and wait for it when the trial's slot frees on the simulated clock.

Per campaign: the best-so-far curve and the iterations to the first converged trial
(first trial whose noise-free metrics fall in the spec's converged band). "Best" is the
mean noise-free reward of the config the searcher would hand over: the one with the
highest mean observed reward (seed replicates pooled); for deterministic tasks that is
simply the best observed reward. Per task and searcher: median and quartiles over
seeds, the ratio ucbx / peer of the medians, and ucbx's wins/ties/losses seed by seed.
"""

from __future__ import annotations

import contextlib
import heapq
import statistics
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.searchers import SEARCHERS, available
from benchmarks.tasks import SYNTHETIC, Task, make_task


@dataclass
class Campaign:
    """One searcher's run on one task and seed."""

    task: str
    searcher: str
    seed: int
    budget: int
    rewards: list[float | None] = field(default_factory=list)  # noise-free reward per trial, log order
    best_so_far: list[float] = field(default_factory=list)  # of the recommended config
    first_converged: int | None = None  # 1-based iteration
    failures: int = 0
    seconds: float = 0.0  # decision + evaluation wall time

    @property
    def best(self) -> float:
        return self.best_so_far[-1] if self.best_so_far else 0.0


class Recommendation:
    """The config a searcher would hand over: highest mean observed reward over its runs (seeds pooled).

    Its reported value is the mean over those runs of the noise-free reward (the observed
    one where the task has no noise-free value, as for the trainers).
    """

    def __init__(self) -> None:
        self.observed: dict[tuple, list[float]] = {}
        self.true: dict[tuple, list[float]] = {}

    def add(self, key: tuple, observed: float | None, true: float | None) -> float:
        if observed is not None and true is not None:
            self.observed.setdefault(key, []).append(observed)
            self.true.setdefault(key, []).append(true)
        if not self.observed:
            return 0.0
        best = max(self.observed, key=lambda k: statistics.fmean(self.observed[k]))
        return statistics.fmean(self.true[best])


def run_campaign(task: Task, searcher_name: str, seed: int, budget: int) -> Campaign:
    """``budget`` trials of one searcher, slots refilled as soon as they free.

    A slot the searcher has nothing for stays idle and is asked again after every result,
    as the driver's next pass would.
    """
    started = time.perf_counter()
    searcher = SEARCHERS[searcher_name](task, seed, budget)
    campaign = Campaign(task.name, searcher_name, seed, budget)
    recommendation, clock, idle, launched = Recommendation(), [], set(range(task.spec.n_slots)), 0

    def launch(slot: int, now: float) -> None:
        nonlocal launched
        trial = searcher.ask(slot) if launched < budget else None
        if trial is not None:
            launched += 1
            idle.discard(slot)
            if task.start is not None:
                task.start(trial.params, slot, trial.seed)
            heapq.heappush(clock, (now + task.durations[slot], slot, launched, trial))

    for slot in sorted(idle):
        launch(slot, 0.0)
    while clock:
        now, slot, _, trial = heapq.heappop(clock)
        evaluation = task.evaluate(trial.params, slot, trial.seed)
        searcher.tell(trial, evaluation.metrics)
        record(campaign, task, recommendation, trial, evaluation)
        idle.add(slot)
        for free in sorted(idle):
            launch(free, now)
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


def tasks_by_seed(name: str, folder: Path, pool: Executor | None, failed_band: bool) -> Callable[[int], Task]:
    """Synthetic landscapes are drawn per seed; a trainer task is built once (its results are reused)."""
    if name in SYNTHETIC:
        return lambda seed: make_task(name, seed, folder, failed_band=failed_band)
    task = make_task(name, 0, folder, pool)
    return lambda seed: task


def run_search(
    task_names: list[str],
    searcher_names: list[str],
    seeds: list[int],
    budget: int,
    folder: Path,
    workers: int = 2,
    failed_band: bool = True,
    progress: Callable[[str], None] = print,
) -> list[Campaign]:
    """Every (task, seed, searcher) campaign, seeds outermost within a task; trainings in ``workers`` processes."""
    folder.mkdir(parents=True, exist_ok=True)
    trainers = any(name not in SYNTHETIC for name in task_names)
    with ProcessPoolExecutor(workers) if trainers else contextlib.nullcontext() as pool:
        return [
            campaign
            for name in task_names
            for campaign in task_campaigns(
                name, searcher_names, seeds, budget, tasks_by_seed(name, folder, pool, failed_band), progress
            )
        ]


def task_campaigns(
    name: str,
    searcher_names: list[str],
    seeds: list[int],
    budget: int,
    task_for: Callable[[int], Task],
    progress: Callable[[str], None],
) -> list[Campaign]:
    """One task: every available searcher on every seed."""
    names, skipped = available(searcher_names, task_for(seeds[0]).spec)
    for searcher, reason in skipped.items():
        progress(f"{name}: {searcher} skipped: {reason}")
    campaigns = []
    for seed in seeds:
        task = task_for(seed)
        for searcher in names:
            campaign = run_campaign(task, searcher, seed, budget)
            campaigns.append(campaign)
            progress(
                f"{name} seed {seed} {searcher}: best {campaign.best:.3f}, first converged "
                f"{campaign.first_converged}, {campaign.seconds:.1f} s"
            )
    return campaigns


# ---------------------------------------------------------------------- summaries


@dataclass(frozen=True)
class Summary:
    """Median and quartiles over seeds of one searcher on one task."""

    task: str
    searcher: str
    seeds: int
    best: tuple[float, float, float]  # q25, median, q75
    converged_at: tuple[float, float, float]  # iterations; budget + 1 when never converged
    reached: int  # seeds that converged within the budget
    seconds: float  # median campaign wall time


def quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def summarise(campaigns: list[Campaign]) -> list[Summary]:
    groups: dict[tuple[str, str], list[Campaign]] = {}
    for campaign in campaigns:
        groups.setdefault((campaign.task, campaign.searcher), []).append(campaign)
    return [
        Summary(
            task,
            searcher,
            len(group),
            quartiles([c.best for c in group]),
            quartiles([float(c.first_converged or c.budget + 1) for c in group]),
            sum(c.first_converged is not None for c in group),
            statistics.median(c.seconds for c in group),
        )
        for (task, searcher), group in groups.items()
    ]


def best_ratio(reference: Summary, peer: Summary) -> str:
    """ucbx / peer of the median best reward (> 1: ucbx better)."""
    return f"{reference.best[1] / peer.best[1]:.2f}" if peer.best[1] else "inf"


def iterations_ratio(reference: Summary, peer: Summary, budget: int) -> str:
    """ucbx / peer of the median iterations to converged (< 1: ucbx faster); '>' or '<' when one never converged."""
    never = budget + 1
    ours, theirs = reference.converged_at[1], peer.converged_at[1]
    if ours >= never and theirs >= never:
        return "n/a"
    prefix = ">" if ours >= never else "<" if theirs >= never else ""
    return f"{prefix}{ours / theirs:.2f}"


def paired_wins(campaigns: list[Campaign], task: str, peer: str, reference: str = "ucbx") -> tuple[int, int, int]:
    """Seeds where ``reference``'s best beats, ties and loses to ``peer``'s (same task, same seed)."""
    ours = {c.seed: c.best for c in campaigns if c.task == task and c.searcher == reference}
    theirs = {c.seed: c.best for c in campaigns if c.task == task and c.searcher == peer}
    pairs = [(ours[seed], theirs[seed]) for seed in ours.keys() & theirs.keys()]
    return (
        sum(a > b + 1e-9 for a, b in pairs),
        sum(abs(a - b) <= 1e-9 for a, b in pairs),
        sum(a < b - 1e-9 for a, b in pairs),
    )


def table(summaries: list[Summary], campaigns: list[Campaign], reference: str = "ucbx") -> str:
    """Markdown: per task and searcher, best and iterations to converged, and ucbx against each peer."""
    budget = campaigns[0].budget
    lines = [
        "| task | searcher | best reward: median [q25, q75] | iters to converged: median [q25, q75] "
        "| converged seeds | ucbx/peer best | ucbx/peer iters | ucbx best: wins/ties/losses | s/campaign |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    refs = {s.task: s for s in summaries if s.searcher == reference}
    for s in summaries:
        ref = refs.get(s.task)
        peer = ref is not None and s is not ref
        converged = "never" if s.converged_at[1] > budget else f"{s.converged_at[1]:.0f}"
        lines.append(
            f"| {s.task} | {s.searcher} | {s.best[1]:.3f} [{s.best[0]:.3f}, {s.best[2]:.3f}] | "
            f"{converged} [{s.converged_at[0]:.0f}, {s.converged_at[2]:.0f}] | {s.reached}/{s.seeds} | "
            f"{best_ratio(ref, s) if peer else '-'} | {iterations_ratio(ref, s, budget) if peer else '-'} | "
            f"{'/'.join(map(str, paired_wins(campaigns, s.task, s.searcher, reference))) if peer else '-'} | "
            f"{s.seconds:.1f} |"
        )
    return "\n".join(lines)


def as_json(campaigns: list[Campaign]) -> list[dict[str, Any]]:
    """Campaigns as JSON-ready dicts, rewards to 6 decimals."""

    def rounded(values: list[float | None]) -> list[float | None]:
        return [None if v is None else round(v, 6) for v in values]

    return [{**asdict(c), "rewards": rounded(c.rewards), "best_so_far": rounded(c.best_so_far)} for c in campaigns]


def from_json(data: list[dict[str, Any]]) -> list[Campaign]:
    return [Campaign(**item) for item in data]

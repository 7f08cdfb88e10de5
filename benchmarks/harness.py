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
simply the best observed reward.

The final check: where a task has no noise-free value (the trainers: one training is one
draw of the seed's noise), that "best" is a maximum over noise for a searcher that runs
every trial once and a mean over replicates for ucbx, not the same kind of number. So
after the budget the harness trains each searcher's recommended config again on the same
``final_seeds`` training seeds (`FINAL_SEED_FROM` on: none is a seed any searcher used)
and scores the campaign by that mean (a failure counts as `WORST_REWARD`); regret is then
against the best such mean on that campaign seed. The check is spent outside the budget,
equally for every searcher.

The fair protocol (issue 15): the spec's priorities are made equal before any searcher
sees it (``priorities="equal"``, the headline figures; ``"spec"`` keeps them), every
searcher runs the base config first on every slot and every peer is told the worst
reward for a failure (benchmarks/searchers.py). Per task and searcher: the median final
simple regret (optimum - best; the optimum is the task's known one, the best final-check
mean on that seed for the trainers, or in runs saved before the final check the best
reward any searcher found on that seed) with a bootstrap 95% interval, converged seeds,
iterations to the first converged trial with its interval, and ucbx against each peer
on final regret, paired by seed: ucbx / peer of the medians, wins/ties/losses and the
two-sided Wilcoxon signed-rank p (benchmarks/stats.py).
"""

from __future__ import annotations

import contextlib
import heapq
import statistics
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.searchers import SEARCHERS, available
from benchmarks.stats import bootstrap_interval, paired_test, simple_regret, wins_ties_losses
from benchmarks.tasks import SEEDED, Task, make_task
from slots.space import SearchSpace
from ucb.rewards import WORST_REWARD

EQUAL, SPEC = "equal", "spec"  # --priorities: all equal (the headline figures) or the spec's own
EQUAL_PRIORITY = 1
REFERENCE = "ucbx"
SIGNIFICANT = 0.05  # two-sided Wilcoxon p below which a difference is called significant
FINAL_SEEDS = 5  # training seeds of the final check (tasks without a noise-free value)
FINAL_SEED_FROM = 101  # the final check's first training seed: the base seed is 0, ucbx's replicates 1000, 2000, ...


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
    optimum: float | None = None  # the task's known best reward; None: unknown (regret against the best found)
    priorities: str = EQUAL
    recommended: dict[str, Any] | None = None  # {"slot": ..., "params": {...}}: the config handed over at the end
    final_rewards: list[float] = field(default_factory=list)  # the final check: its reward per final seed
    final_converged: list[bool] = field(default_factory=list)  # the final check: did the run on that seed converge

    @property
    def final(self) -> float | None:
        """Mean reward of the recommended config over the final check's seeds; None: no final check."""
        return statistics.fmean(self.final_rewards) if self.final_rewards else None

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
        self.configs: dict[tuple, dict[str, Any]] = {}  # key -> {"slot": ..., "params": ...}

    def add(self, slot: int, params: dict[str, Any], observed: float | None, true: float | None) -> float:
        """Count one trial; the recommended config's value after it."""
        key = (slot, tuple(sorted((k, repr(v)) for k, v in params.items())))
        if observed is not None and true is not None:
            self.observed.setdefault(key, []).append(observed)
            self.true.setdefault(key, []).append(true)
            self.configs[key] = {"slot": slot, "params": dict(params)}
        best = self.best()
        return statistics.fmean(self.true[best]) if best is not None else 0.0

    def best(self) -> tuple | None:
        if not self.observed:
            return None
        return max(self.observed, key=lambda k: statistics.fmean(self.observed[k]))

    def config(self) -> dict[str, Any] | None:
        """The recommended config as {"slot": ..., "params": ...}; None before any usable trial."""
        best = self.best()
        return self.configs[best] if best is not None else None


def with_priorities(task: Task, priorities: str) -> Task:
    """The task as every searcher sees it: ``equal`` sets every parameter's priority to `EQUAL_PRIORITY`."""
    if priorities == SPEC:
        return task
    if priorities != EQUAL:
        raise ValueError(f"priorities: {priorities!r} is not one of {EQUAL}, {SPEC}")
    parameters = tuple(replace(p, priority=EQUAL_PRIORITY) for p in task.spec.space)
    return replace(task, spec=replace(task.spec, space=SearchSpace(parameters)))


def run_campaign(
    task: Task,
    searcher_name: str,
    seed: int,
    budget: int,
    priorities: str = EQUAL,
    final_seeds: int = FINAL_SEEDS,
) -> Campaign:
    """``budget`` trials of one searcher, slots refilled as soon as they free, then the final check.

    The spec's priorities are made equal (``priorities="equal"``) before the searcher sees
    it. A slot the searcher has nothing for stays idle and is asked again after every
    result, as the driver's next pass would. A task without a noise-free value gets the
    final check on ``final_seeds`` training seeds (0: none).
    """
    started = time.perf_counter()
    task = with_priorities(task, priorities)
    searcher = SEARCHERS[searcher_name](task, seed, budget)
    campaign = Campaign(task.name, searcher_name, seed, budget, optimum=task.optimum, priorities=priorities)
    recommendation, clock, idle, launched = Recommendation(), [], set(range(task.spec.n_slots)), 0
    used = set()  # training seeds of the campaign's trials

    def launch(slot: int, now: float) -> None:
        nonlocal launched
        trial = searcher.ask(slot) if launched < budget else None
        if trial is not None:
            launched += 1
            idle.discard(slot)
            used.add(trial.seed)
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
    campaign.seconds = time.perf_counter() - started  # the final check is outside the campaign
    campaign.recommended = recommendation.config()
    if not task.noise_free and final_seeds > 0:
        campaign.final_rewards, campaign.final_converged = final_check(task, campaign.recommended, final_seeds, used)
    return campaign


def final_check(
    task: Task, recommended: dict[str, Any] | None, final_seeds: int, used: set
) -> tuple[list[float], list[bool]]:
    """The recommended config's reward on each final seed, trained side by side, and whether that run converged
    (the task's bands); a failure's reward is `WORST_REWARD`.

    With nothing recommended (every trial failed) every final seed counts as a failure.
    Raises ValueError if a final seed is one of the campaign's training seeds ``used``.
    """
    seeds = range(FINAL_SEED_FROM, FINAL_SEED_FROM + final_seeds)
    reused = sorted(set(seeds) & used)
    if reused:
        raise ValueError(f"final check: training seeds {reused} were already used by the campaign's trials")
    if recommended is None:
        return [WORST_REWARD] * final_seeds, [False] * final_seeds
    slot, params = recommended["slot"], recommended["params"]
    if task.start is not None:
        for training_seed in seeds:
            task.start(params, slot, training_seed)
    rewards, converged = [], []
    for training_seed in seeds:
        metrics = task.evaluate(params, slot, training_seed).metrics
        reward = task.spec.objective.score(metrics).reward
        rewards.append(WORST_REWARD if reward is None else reward)
        converged.append(task.converged(metrics))
    return rewards, converged


def record(campaign: Campaign, task: Task, recommendation: Recommendation, trial, evaluation) -> None:
    objective = task.spec.objective
    observed = objective.score(evaluation.metrics).reward
    true = objective.score(evaluation.true_metrics).reward
    campaign.rewards.append(true)
    campaign.failures += observed is None
    campaign.best_so_far.append(recommendation.add(trial.slot, trial.params, observed, true))
    if campaign.first_converged is None and task.converged(evaluation.true_metrics):
        campaign.first_converged = len(campaign.rewards)


def tasks_by_seed(name: str, folder: Path, pool: Executor | None, failed_band: bool) -> Callable[[int], Task]:
    """Synthetic landscapes are drawn per seed; a trainer task is built once (its results are reused)."""
    if name in SEEDED:
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
    priorities: str = EQUAL,
    final_seeds: int = FINAL_SEEDS,
) -> list[Campaign]:
    """Every (task, seed, searcher) campaign, seeds outermost within a task; trainings in ``workers`` processes."""
    folder.mkdir(parents=True, exist_ok=True)
    trainers = any(name not in SEEDED for name in task_names)
    with ProcessPoolExecutor(workers) if trainers else contextlib.nullcontext() as pool:
        return [
            campaign
            for name in task_names
            for campaign in task_campaigns(
                name,
                searcher_names,
                seeds,
                budget,
                tasks_by_seed(name, folder, pool, failed_band),
                progress,
                priorities,
                final_seeds,
            )
        ]


def task_campaigns(
    name: str,
    searcher_names: list[str],
    seeds: list[int],
    budget: int,
    task_for: Callable[[int], Task],
    progress: Callable[[str], None],
    priorities: str = EQUAL,
    final_seeds: int = FINAL_SEEDS,
) -> list[Campaign]:
    """One task: every available searcher on every seed."""
    names, skipped = available(searcher_names, task_for(seeds[0]).spec)
    for searcher, reason in skipped.items():
        progress(f"{name}: {searcher} skipped: {reason}")
    campaigns = []
    for seed in seeds:
        task = task_for(seed)
        for searcher in names:
            campaign = run_campaign(task, searcher, seed, budget, priorities, final_seeds)
            campaigns.append(campaign)
            checked = f", final check {campaign.final:.3f}" if campaign.final is not None else ""
            progress(
                f"{name} seed {seed} {searcher}: best {campaign.best:.3f}{checked}, first converged "
                f"{campaign.first_converged}, {campaign.seconds:.1f} s"
            )
    return campaigns


# ---------------------------------------------------------------------- summaries


def optima(campaigns: list[Campaign]) -> dict[tuple[str, int], float]:
    """Per (task, seed), what the in-campaign curves are measured against.

    The known optimum, or the best noise-free reward any searcher found on that seed.
    """
    found: dict[tuple[str, int], float] = {}
    for c in campaigns:
        key = (c.task, c.seed)
        if c.optimum is not None:
            found[key] = c.optimum
        elif c.rewards:
            best = max((r for r in c.rewards if r is not None), default=0.0)
            found[key] = max(found.get(key, 0.0), best)
    return found


def final_optima(campaigns: list[Campaign]) -> dict[tuple[str, int], float]:
    """Per (task, seed), what final regret is measured against.

    The known optimum; where the campaigns had the final check, the best final-check mean
    of any searcher on that seed; otherwise as `optima`.
    """
    found = optima(campaigns)
    checked: dict[tuple[str, int], float] = {}
    for c in campaigns:
        if c.optimum is None and c.final is not None:
            key = (c.task, c.seed)
            checked[key] = max(checked.get(key, WORST_REWARD), c.final)
    return {**found, **checked}


def regret_curve(campaign: Campaign, optimum: float) -> list[float]:
    """Simple regret of the recommended config after each trial, padded to the budget (an early stop keeps its best)."""
    curve = campaign.best_so_far or [0.0]
    curve = curve + [curve[-1]] * (campaign.budget - len(curve))
    return [simple_regret(optimum, best) for best in curve]


def final_regret(campaign: Campaign, optimum: float) -> float:
    """The final check's regret where there was one, else the curve's last point (``optimum`` from `final_optima`)."""
    if campaign.final is not None:
        return simple_regret(optimum, campaign.final)
    return regret_curve(campaign, optimum)[-1]


def converged_at(campaign: Campaign) -> float:
    """Iterations to the first converged trial; budget + 1 when none converged (censored)."""
    return float(campaign.first_converged or campaign.budget + 1)


@dataclass(frozen=True)
class Row:
    """One searcher on one task over its seeds, and ucbx against it seed by seed."""

    task: str
    searcher: str
    seeds: int
    regret: float  # median final simple regret
    regret_interval: tuple[float, float]  # bootstrap 95% of the median
    converged: int  # seeds that converged within the budget
    iterations: float  # median iterations to first converged (budget + 1: never)
    iterations_interval: tuple[float, float]
    seconds: float  # median campaign wall time
    versus: tuple[int, int, int] | None = None  # ucbx's wins/ties/losses on final regret (lower wins)
    p_value: float | None = None  # two-sided Wilcoxon, ucbx's regret - peer's, paired by seed


def rows(campaigns: list[Campaign], reference: str = REFERENCE) -> list[Row]:
    """Per task and searcher, in the order first seen; the peers' rows carry the paired comparison with ucbx."""
    best = final_optima(campaigns)
    groups: dict[tuple[str, str], list[Campaign]] = {}
    for campaign in campaigns:
        groups.setdefault((campaign.task, campaign.searcher), []).append(campaign)
    regret = {key: {c.seed: final_regret(c, best[(c.task, c.seed)]) for c in group} for key, group in groups.items()}
    table = []
    for (task, searcher), group in groups.items():
        values = list(regret[(task, searcher)].values())
        iterations = [converged_at(c) for c in group]
        versus = p_value = None
        ours = regret.get((task, reference))
        if searcher != reference and ours is not None:
            seeds = sorted(ours.keys() & regret[(task, searcher)].keys())
            mine = [ours[seed] for seed in seeds]
            theirs = [regret[(task, searcher)][seed] for seed in seeds]
            versus = wins_ties_losses(mine, theirs)
            p_value = paired_test(mine, theirs).p_value
        table.append(
            Row(
                task,
                searcher,
                len(group),
                float(np.median(values)),
                bootstrap_interval(values),
                sum(c.first_converged is not None for c in group),
                float(np.median(iterations)),
                bootstrap_interval(iterations),
                statistics.median(c.seconds for c in group),
                versus,
                p_value,
            )
        )
    return table


def iterations_text(value: float, budget: int) -> str:
    return "never" if value > budget else f"{value:.0f}"


def ratio_text(ours: float, theirs: float) -> str:
    """ucbx / peer of the median regrets (< 1: ucbx closer to the optimum)."""
    if theirs <= 0:
        return "0 / 0" if ours <= 0 else "inf"
    return f"{ours / theirs:.2f}"


def table(campaigns: list[Campaign], reference: str = REFERENCE) -> str:
    """Markdown: per task and searcher, final simple regret and iterations to converged, ucbx against each peer."""
    budget = campaigns[0].budget
    lines = [
        "| task | searcher | simple regret: median [95% CI] | converged seeds | iters to converged: median "
        "[95% CI] | ucbx/peer median regret | ucbx regret: wins/ties/losses | Wilcoxon p | s/campaign |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    table_rows = rows(campaigns, reference)
    ours = {r.task: r for r in table_rows if r.searcher == reference}
    for r in table_rows:
        peer = r.versus is not None
        low, high = r.iterations_interval
        lines.append(
            f"| {r.task} | {r.searcher} | {r.regret:.3f} [{r.regret_interval[0]:.3f}, {r.regret_interval[1]:.3f}] | "
            f"{r.converged}/{r.seeds} | {iterations_text(r.iterations, budget)} "
            f"[{iterations_text(low, budget)}, {iterations_text(high, budget)}] | "
            f"{ratio_text(ours[r.task].regret, r.regret) if peer else '-'} | "
            f"{'/'.join(map(str, r.versus)) if peer else '-'} | {f'{r.p_value:.3g}' if peer else '-'} | "
            f"{r.seconds:.1f} |"
        )
    return "\n".join(lines)


def compact_table(campaigns: list[Campaign], reference: str = REFERENCE, peer: str = "tpe") -> str:
    """Markdown, one row per task: each searcher's median final regret [95% CI]; ucbx against ``peer`` paired.

    Without ``peer`` among the searchers, the first other searcher is the one compared.
    """
    table_rows = rows(campaigns, reference)
    searchers = list(dict.fromkeys(r.searcher for r in table_rows))
    if peer not in searchers:  # e.g. the gp run: ucbx against the only peer
        peer = next((s for s in searchers if s != reference), peer)
    cells = {(r.task, r.searcher): r for r in table_rows}
    lines = [
        f"| task | {' | '.join(searchers)} | ucbx vs {peer}: w/t/l, p |",
        f"| --- | {' | '.join('---:' for _ in searchers)} | ---: |",
    ]
    for task in dict.fromkeys(r.task for r in table_rows):
        values = [
            f"{cells[(task, s)].regret:.3f} [{cells[(task, s)].regret_interval[0]:.3f}, "
            f"{cells[(task, s)].regret_interval[1]:.3f}]"
            if (task, s) in cells
            else "-"
            for s in searchers
        ]
        against = cells.get((task, peer))
        versus = f"{'/'.join(map(str, against.versus))}, {against.p_value:.2g}" if against and against.versus else "-"
        lines.append(f"| {task} | {' | '.join(values)} | {versus} |")
    return "\n".join(lines)


def final_check_table(campaigns: list[Campaign]) -> str:
    """Markdown: per task and searcher with a final check, its reward against the in-campaign figure.

    The gap between the two is how much the in-campaign figure flattered the recommendation
    (for a peer, a best single draw of the training noise). The last column counts the final
    runs the task's bands class converged, over every seed ("-" for runs saved before it was
    recorded). Empty when no campaign had a final check.
    """
    groups: dict[tuple[str, str], list[Campaign]] = {}
    for campaign in campaigns:
        if campaign.final is not None:
            groups.setdefault((campaign.task, campaign.searcher), []).append(campaign)
    if not groups:
        return ""
    lines = [
        "| task | searcher | final check reward: mean over seeds [95% CI] | median | min | in-campaign reward: mean"
        " | final runs converged |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (task, searcher), group in groups.items():
        finals = [c.final for c in group]
        low, high = bootstrap_interval(finals, np.mean)
        runs = [converged for c in group for converged in c.final_converged]
        converged = f"{sum(runs)}/{len(runs)}" if runs else "-"
        lines.append(
            f"| {task} | {searcher} | {statistics.fmean(finals):.3f} [{low:.3f}, {high:.3f}] | "
            f"{statistics.median(finals):.3f} | {min(finals):.3f} | {statistics.fmean(c.best for c in group):.3f} |"
            f" {converged} |"
        )
    return "\n".join(lines)


def losses(campaigns: list[Campaign], reference: str = REFERENCE) -> list[str]:
    """Plain sentences: every peer whose median regret is below ucbx's, with the paired test's verdict."""
    table_rows = rows(campaigns, reference)
    ours = {r.task: r for r in table_rows if r.searcher == reference}
    found = []
    for r in table_rows:
        if r.versus is None or r.regret >= ours[r.task].regret:
            continue
        verdict = "significant" if r.p_value < SIGNIFICANT else "not significant"
        found.append(
            f"{r.task}: ucbx loses to {r.searcher} (median regret {ours[r.task].regret:.3f} vs {r.regret:.3f}; "
            f"ucbx wins/ties/losses {'/'.join(map(str, r.versus))}; Wilcoxon p = {r.p_value:.3g}, {verdict})"
        )
    return found


def as_json(campaigns: list[Campaign]) -> list[dict[str, Any]]:
    """Campaigns as JSON-ready dicts, rewards to 6 decimals."""

    def rounded(values: list[float | None]) -> list[float | None]:
        return [None if v is None else round(v, 6) for v in values]

    return [{**asdict(c), "rewards": rounded(c.rewards), "best_so_far": rounded(c.best_so_far)} for c in campaigns]


def from_json(data: list[dict[str, Any]]) -> list[Campaign]:
    return [Campaign(**item) for item in data]

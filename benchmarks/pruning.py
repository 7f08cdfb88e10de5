"""``python -m benchmarks pruning``: stopping runs early, ucbx's rules against Optuna's pruners, on learning curves.

The synthetic tasks (benchmarks/tasks.py) give each trial its final metrics; here each
trial also gets a learning curve, drawn from its config and seed (the same curve for
every method that asks for that config): ``REPORTS`` progress reports at fractions
0.1 .. 1.0 of its slot's duration, the value approaching the final one as
``(1 - exp(-k f)) / (1 - exp(-k))`` (k from 3 to 8) plus report noise (sd
``REPORT_NOISE``); a share ``LATE_BLOOMERS`` of the trials are late bloomers (``f**p``,
p from 2 to 3) whose curves cross the others, so a pruner can stop the run that would
have won. A trial whose final metrics are nan diverges at a fraction from 0.1 to 0.5
and ends there (as a trainer that stops on nan), for every method.

Slots run asynchronously on a simulated clock (slot durations 4/16/32/64); a trial that
is stopped frees its slot at the report where it was stopped. Every method gets the same
slot-time budget: the clock time in which the slots would run ``--budget`` whole trials
without pruning; no trial starts after it. Methods: ``ucbx`` (its policy, no pruning),
``ucbx-median`` and ``ucbx-asha`` (agent/pruning.py's own decision code, per slot, with its
protections), ``tpe`` (Optuna TPE, no pruning), ``tpe-median`` (MedianPruner) and
``tpe-hyperband`` (HyperbandPruner), told the intermediate rewards through ``trial.report``.

Reported per task and method over seeds: slot-time to the first converged result (a
whole trial whose noise-free final metrics the bands class converged; in units of the
mean trial duration, counting every slot's busy time, stopped trials included), the final
best (noise-free reward of the config each method would recommend: highest mean observed
reward among whole trials), trials and stopped trials, and the stopped trials that would
have become the campaign's best (their noise-free final reward above the final best).
Intervals are 95% bootstrap intervals over seeds (2000 resamples); the ratios are paired
by seed against the same searcher without pruning. The fair protocol of benchmarks/harness.py
holds: the spec's priorities made equal, the base config first on every slot, a failure
told the worst reward.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import random
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from agent.pruning import Pruner
from agent.spec import PruningSettings
from benchmarks.harness import EQUAL, Recommendation, with_priorities
from benchmarks.searchers import UcbxSearcher, distribution, told_value
from benchmarks.tasks import SYNTHETIC, Task, make_task
from memory.progress import ProgressPoint
from slots.journal import JobRecord

REPORTS = 10
REPORT_NOISE = 0.02
LATE_BLOOMERS = 0.15
BOOTSTRAP = 2000
METRIC = "val_acc"
UCBX_RULES = {
    "ucbx": None,
    "ucbx-median": PruningSettings(rule="median", min_fraction=0.25, min_runs=3),
    "ucbx-asha": PruningSettings(rule="asha", min_fraction=0.2, min_runs=3, eta=3.0),
}
TPE_PRUNERS = ("tpe", "tpe-median", "tpe-hyperband")
METHODS = (*UCBX_RULES, *TPE_PRUNERS)
BASELINE = {"ucbx-median": "ucbx", "ucbx-asha": "ucbx", "tpe-median": "tpe", "tpe-hyperband": "tpe"}


# ---------------------------------------------------------------------- curves


@dataclass(frozen=True)
class Curve:
    """A trial's reports (observed values, fractions) and how it ends."""

    fractions: tuple[float, ...]
    values: tuple[float, ...]
    final: dict[str, float]  # observed final metrics (nan when it diverged)
    true_final: dict[str, float]


def draw_curve(task: Task, params: dict[str, Any], slot: int, seed: int | None, task_seed: int) -> Curve:
    """The curve of one (config, slot, seed): the same for every method that runs it."""
    evaluation = task.evaluate(params, slot, seed)
    text = f"{task.name}|{task_seed}|{slot}|{seed}|{sorted((k, repr(v)) for k, v in params.items())}"
    rng = random.Random(int(hashlib.sha256(text.encode()).hexdigest()[:12], 16))
    final = evaluation.metrics[METRIC]
    if not math.isfinite(final):
        end = rng.choice([0.1, 0.2, 0.3, 0.4, 0.5])
        fractions = tuple(round(k / REPORTS, 6) for k in range(1, round(end * REPORTS) + 1))
        values = tuple(0.2 * f + rng.gauss(0, REPORT_NOISE) for f in fractions[:-1]) + (math.nan,)
        return Curve(fractions, values, evaluation.metrics, evaluation.true_metrics)
    fractions = tuple(round(k / REPORTS, 6) for k in range(1, REPORTS + 1))
    if rng.random() < LATE_BLOOMERS:
        power = rng.uniform(2.0, 3.0)
        shape = [f**power for f in fractions]
    else:
        speed = rng.uniform(3.0, 8.0)
        shape = [(1 - math.exp(-speed * f)) / (1 - math.exp(-speed)) for f in fractions]
    values = tuple(final * s + rng.gauss(0, REPORT_NOISE) for s in shape[:-1]) + (final,)
    return Curve(fractions, values, evaluation.metrics, evaluation.true_metrics)


# ---------------------------------------------------------------------- the methods


class UcbxMethod:
    """ucbx's policy; with a rule, agent/pruning.py's decision code judges each report."""

    def __init__(self, task: Task, seed: int, budget: int, rule: PruningSettings | None):
        self.searcher = UcbxSearcher(task, seed, budget)
        self.spec = self.searcher.spec
        self.payloads: dict[int, dict] = {}
        self.curves: dict[int, list[ProgressPoint]] = {}
        self.pruner = None
        if rule is not None:
            self.spec = replace(self.spec, exploration=replace(self.spec.exploration, pruning=rule))
            self.pruner = SimulatedPruner(self.spec, self.curves)

    def ask(self, slot: int):
        book = self.searcher.book
        proposal = self.searcher.policy.propose(book.state(), slot)
        if proposal is None:
            return None
        node_id = book.next_id()
        book.add(proposal.as_record(node_id), proposal.mutation_text(self.spec.space))
        self.payloads[node_id] = proposal.to_payload()
        self.curves[node_id] = []
        return node_id, dict(proposal.params), proposal.seed

    def report(self, handle: int, slot: int, fraction: float, value: float) -> str:
        """'' to go on, else the reason to stop."""
        self.curves[handle].append(ProgressPoint(round(fraction * REPORTS), REPORTS, {METRIC: value}))
        if self.pruner is None or not math.isfinite(value):
            return ""
        job = JobRecord(
            id=handle,
            iteration=handle,
            node_id=handle,
            slot=slot,
            config_path="",
            run_dir="",
            launcher="simulated",
            payload=self.payloads[handle],
        )
        verdict, point = self.pruner.judge(self.searcher.book.state(), job, self.curves[handle])
        return "" if verdict is None else f"pruned: {verdict.rule} at {verdict.fraction:.0%}"

    def tell(self, handle: int, metrics: dict[str, float], stopped: str) -> None:
        book = self.searcher.book
        book.finish(handle, metrics)
        if stopped:
            book.entries[-1].failure, book.entries[-1].status = stopped, "failed"


class SimulatedPruner(Pruner):
    """agent/pruning.py's `Pruner` with the curves in memory instead of run folders."""

    def __init__(self, spec, curves: dict[int, list[ProgressPoint]]):
        super().__init__(spec, None, None, None)
        self.memory = curves

    def _curve(self, node_id: int) -> list[ProgressPoint]:
        return self.memory.get(node_id, [])

    def judge(self, snapshot, job: JobRecord, points: list[ProgressPoint]):
        return self._judge(snapshot, job, points)


class TpeMethod:
    """Optuna TPE as benchmarks/searchers.py runs it (the fair protocol: the base config enqueued once per
    slot, a failure told the worst reward), with a pruner told each report through ``trial.report``."""

    def __init__(self, task: Task, seed: int, budget: int, pruner: str):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        self.spec = task.spec
        pruners = {
            "tpe": optuna.pruners.NopPruner(),
            "tpe-median": optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
            "tpe-hyperband": optuna.pruners.HyperbandPruner(min_resource=2, max_resource=REPORTS, reduction_factor=3),
        }
        sampler = optuna.samplers.TPESampler(multivariate=True, constant_liar=True, seed=seed)
        self.study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruners[pruner])
        self.distributions = {p.key: distribution(optuna, p) for p in self.spec.space}
        self.started: set[int] = set()
        self.pruned = optuna.trial.TrialState.PRUNED

    def ask(self, slot: int):
        if slot not in self.started:
            self.started.add(slot)
            self.study.enqueue_trial(self.spec.base_params())
        trial = self.study.ask(self.distributions)
        return trial, dict(trial.params), self.spec.base_seed()

    def report(self, handle, slot: int, fraction: float, value: float) -> str:
        reward = self.spec.objective.score({METRIC: value}).reward
        if reward is None:
            return ""
        handle.report(reward, round(fraction * REPORTS))
        return "pruned" if handle.should_prune() else ""

    def tell(self, handle, metrics: dict[str, float], stopped: str) -> None:
        if stopped:
            self.study.tell(handle, state=self.pruned)
        else:
            self.study.tell(handle, told_value(self.spec, metrics))


def make_method(name: str, task: Task, seed: int, budget: int):
    if name in UCBX_RULES:
        return UcbxMethod(task, seed, budget, UCBX_RULES[name])
    return TpeMethod(task, seed, budget, name)


# ---------------------------------------------------------------------- one campaign


@dataclass
class Result:
    task: str
    method: str
    seed: int
    converged_at: float | None = None  # slot-time (mean trial durations) to the first converged whole trial
    best: float = 0.0  # noise-free reward of the recommended config at the end
    trials: int = 0
    stopped: int = 0
    stopped_would_win: int = 0
    slot_time: float = 0.0
    stopped_finals: list[float] = field(default_factory=list)  # noise-free final rewards of stopped trials


@dataclass(order=True)
class _Event:
    time: float
    order: int
    slot: int = field(compare=False)
    handle: Any = field(compare=False)
    curve: Curve = field(compare=False)
    start: float = field(compare=False)
    report: int = field(compare=False)
    params: dict[str, Any] = field(compare=False)


def budget_time(task: Task, trials: int) -> float:
    """The clock time in which the slots run ``trials`` whole trials without stopping any."""
    return trials / sum(1.0 / d for d in task.durations)


def run_campaign(task: Task, method_name: str, seed: int, trials: int) -> Result:
    """One method on one task and seed, within the slot-time of ``trials`` whole trials."""
    method = make_method(method_name, task, seed, trials)
    result, recommendation = Result(task.name, method_name, seed), Recommendation()
    unit = statistics.fmean(task.durations)
    deadline, events, order, busy = budget_time(task, trials), [], 0, 0.0
    running: dict[int, float] = {}  # slot -> start of its trial

    def launch(slot: int, now: float) -> None:
        nonlocal order
        asked = method.ask(slot) if now < deadline else None
        if asked is None:
            return
        handle, params, trial_seed = asked
        curve = draw_curve(task, params, slot, trial_seed, seed)
        order += 1
        running[slot] = now
        first = now + task.durations[slot] * curve.fractions[0]
        heapq.heappush(events, _Event(first, order, slot, handle, curve, now, 0, params))
        result.trials += 1

    for slot in range(task.spec.n_slots):
        launch(slot, 0.0)
    while events:
        event = heapq.heappop(events)
        curve, k = event.curve, event.report
        last = k == len(curve.values) - 1
        stopped = "" if last else method.report(event.handle, event.slot, curve.fractions[k], curve.values[k])
        if not last and not stopped:
            order += 1
            at = event.start + task.durations[event.slot] * curve.fractions[k + 1]
            heapq.heappush(events, _Event(at, order, event.slot, event.handle, curve, event.start, k + 1, event.params))
            continue
        busy += event.time - event.start
        del running[event.slot]
        true_final = task.spec.objective.score(curve.true_final).reward
        if stopped:
            method.tell(event.handle, {METRIC: curve.values[k]}, stopped)
            result.stopped += 1
            result.stopped_finals.append(true_final if true_final is not None else math.nan)
            recommendation.add(event.slot, event.params, None, None)
        else:
            method.tell(event.handle, curve.final, "")
            observed = task.spec.objective.score(curve.final).reward
            result.best = recommendation.add(event.slot, event.params, observed, true_final)
            if result.converged_at is None and task.converged(curve.true_final):
                in_flight = sum(event.time - start for start in running.values())
                result.converged_at = (busy + in_flight) / unit
        launch(event.slot, event.time)
    result.slot_time = busy / unit
    result.stopped_would_win = sum(1 for v in result.stopped_finals if math.isfinite(v) and v > result.best + 1e-12)
    return result


# ---------------------------------------------------------------------- statistics and the table


def bootstrap(values: list[float], statistic=statistics.median, seed: int = 0) -> tuple[float, float, float]:
    """(statistic, low, high): the 95% percentile interval of ``statistic`` over resampled seeds."""
    rng = random.Random(seed)
    draws = sorted(statistic([rng.choice(values) for _ in values]) for _ in range(BOOTSTRAP))
    return statistic(values), draws[int(0.025 * BOOTSTRAP)], draws[int(0.975 * BOOTSTRAP) - 1]


def _time(result: Result, trials: int) -> float:
    """Slot-time to the first converged result; never: the whole budget's slot-time (a floor)."""
    return result.converged_at if result.converged_at is not None else math.inf


def _interval(value: tuple[float, float, float], digits: int = 2) -> str:
    def show(x: float) -> str:
        return "never" if math.isinf(x) else f"{x:.{digits}f}"

    return f"{show(value[0])} [{show(value[1])}, {show(value[2])}]"


def _paired_ratio(pruned: list[Result], plain: list[Result], trials: int) -> str:
    """Median over seeds of plain/pruned slot-time to converged (seeds where both converged), with its interval."""
    ratios = [
        _time(b, trials) / _time(a, trials)
        for a, b in zip(pruned, plain)
        if a.converged_at is not None and b.converged_at is not None and a.converged_at > 0
    ]
    if len(ratios) < 3:
        return "n/a"
    return _interval(bootstrap(ratios)) + f" ({len(ratios)} seeds)"


def _paired_best(pruned: list[Result], plain: list[Result]) -> str:
    differences = [a.best - b.best for a, b in zip(pruned, plain)]
    return _interval(bootstrap(differences, statistics.fmean), 3)


def row(task: str, method: str, group: list[Result], plain: list[Result], trials: int) -> str:
    """One table row: a method on a task over its seeds."""
    times = [_time(r, trials) for r in group]
    stopped = sum(r.stopped for r in group)
    wins = sum(r.stopped_would_win for r in group)
    cells = [
        task,
        method,
        _interval(bootstrap(times)),
        f"{sum(r.converged_at is not None for r in group)}/{len(group)}",
        _interval(bootstrap([r.best for r in group]), 3),
        _paired_ratio(group, plain, trials) if plain else "-",
        _paired_best(group, plain) if plain else "-",
        f"{statistics.fmean(r.trials for r in group):.1f}",
        str(stopped),
        f"{wins} ({wins / stopped:.1%} of stopped)" if stopped else "0",
    ]
    return "| " + " | ".join(cells) + " |"


def table(results: list[Result], trials: int) -> str:
    lines = [
        "| task | method | slot-time to converged: median [95% CI] | converged seeds | final best: median [95% CI] "
        "| time ratio, no pruning / pruning (paired): median [95% CI] | best difference vs no pruning: mean [95% CI] "
        "| trials per campaign | stopped | stopped that would have been best |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for task in dict.fromkeys(r.task for r in results):
        by_method = {
            m: sorted((r for r in results if r.task == task and r.method == m), key=lambda r: r.seed) for m in METHODS
        }
        for method, group in by_method.items():
            if group:
                lines.append(row(task, method, group, by_method.get(BASELINE.get(method, ""), []), trials))
    return "\n".join(lines)


# ---------------------------------------------------------------------- the command


def run(task_names: list[str], methods: list[str], seeds: list[int], trials: int, progress=print) -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory(prefix="ucbx-pruning-") as work:
        for name in task_names:
            for seed in seeds:
                task = with_priorities(make_task(name, seed, Path(work)), EQUAL)  # the fair protocol (issue 15)
                for method in methods:
                    result = run_campaign(task, method, seed, trials)
                    results.append(result)
                progress(
                    f"{name} seed {seed}: " + ", ".join(f"{r.method} {r.best:.3f}" for r in results[-len(methods) :])
                )
    return results


def command(options, argv: list[str]) -> None:
    from benchmarks.__main__ import header, save

    seeds = list(range(options.first_seed, options.first_seed + options.n_seeds))
    started = time.perf_counter()
    results = run(options.tasks, options.methods, seeds, options.budget)
    intro = (
        f"{header(argv)}\nSeeds {seeds[0]}-{seeds[-1]}, slot-time budget of {options.budget} whole trials, "
        f"{REPORTS} reports per trial, {LATE_BLOOMERS:.0%} late bloomers, report noise sd {REPORT_NOISE}; "
        f"{time.perf_counter() - started:.0f} s in all. Slot-time in mean trial durations."
    )
    save(
        options.results,
        f"pruning_{options.label}",
        f"{intro}\n\n{table(results, options.budget)}",
        [asdict(r) for r in results],
    )


def add_command(commands) -> None:
    """The ``pruning`` subcommand of ``python -m benchmarks``."""
    run_parser = commands.add_parser("pruning", help="stopping runs early: ucbx's rules against Optuna's pruners")
    run_parser.add_argument("--tasks", nargs="+", default=list(SYNTHETIC), choices=list(SYNTHETIC))
    run_parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    run_parser.add_argument("--first-seed", type=int, default=0)
    run_parser.add_argument("--n-seeds", type=int, default=30)
    run_parser.add_argument("--budget", type=int, default=48, help="slot-time budget, in whole trials")
    run_parser.add_argument("--label", default="synthetic")
    run_parser.set_defaults(action=command)


def load(path: Path) -> list[Result]:
    return [Result(**row) for row in json.loads(path.read_text())]

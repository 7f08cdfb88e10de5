"""The searchers compared on every task, behind one ask/tell interface.

The fair protocol (issue 15): every searcher runs the spec's base config first on every
slot (ucbx and public-rule by their own rule; the peers through `Peer.ask` or, for
Optuna, `Study.enqueue_trial` once per slot), and every peer that learns is told
`WORST_REWARD` (0.0, the minimum of every objective's reward) for a crash, a divergence
or a nan, never Optuna's FAIL state (`told_value`).

- ``ucbx``: agent/policy.py's `Policy.propose`, fed the `Snapshot` the driver builds
  (agent/snapshot.py `Snapshot.build`) from the entries the driver would write (agent/analysis.py
  `outcome_of`): the tree from the log entries with in-flight nodes as virtual visits,
  PUCT ranking (ucb/scores.py), pooled rewards.
- ``public-rule``: the public implementation's rule. Each slot's first run is the base
  config (seed 003's initial spread); after that the parent is the highest PUCT node
  (`ucb.scores.puct` with c=1.414, `choose_parent`, same tree and virtual visits as
  ucbx), and the child changes one parameter drawn uniformly: a number is multiplied or
  divided by 2 (coin flip; ints rounded, clipped to the bounds), a choice or bool takes
  another value drawn uniformly. No duplicate check, no memory, no surrogate.
- ``random``: each parameter drawn independently, log-uniform when log-scaled.
- ``tpe``: Optuna's TPESampler(multivariate=True, constant_liar=True, seed), one study.
  Optuna has no input for the slot's fixed value, so TPE sees it as noise.
- ``tpe-per-slot``: the same sampler, one study per slot value.
- ``cmaes``: Optuna's CmaEsSampler with x0 = the base config's numeric values.
- ``gp``: Optuna's GPSampler (deterministic_objective where the task is noise-free).
- ``grid``: a full factorial grid (every choice, k log/linear levels per number, k
  the smallest giving at least `budget` points) visited in a seeded random order;
  only where the space has at most `GRID_MAX_PARAMETERS` parameters.
The Optuna searchers need the optional extra ``bench`` (optuna, cmaes).

Every searcher runs with the base config's seed except ucbx's replicates.
"""

from __future__ import annotations

import itertools
import math
import random
import warnings
from dataclasses import dataclass, replace
from typing import Any

from agent.analysis import outcome_of
from agent.history import NodeRecord, config_line
from agent.playbook import load_playbook
from agent.policy import Policy
from agent.snapshot import Snapshot
from agent.spec import Spec
from benchmarks.tasks import Task, metrics_failure
from memory.notebook import Entry
from slots.config import get_path
from slots.space import Parameter
from ucb.rewards import WORST_REWARD
from ucb.scores import choose_parent, puct
from ucb.tree import Tree

GRID_MAX_PARAMETERS = 3
PUBLIC_C = 1.414


@dataclass
class Trial:
    """One run a searcher asked for."""

    slot: int
    params: dict[str, Any]
    seed: int | None
    handle: Any = None  # the searcher's own reference (node id, Optuna trial)


class Searcher:
    """ask(slot) -> Trial | None (None: nothing left to propose); tell(trial, metrics)."""

    name = ""

    def __init__(self, task: Task, seed: int, budget: int):
        self.spec = task.spec
        self.rng = random.Random(f"{self.name}-{seed}")

    def ask(self, slot: int) -> Trial | None:
        raise NotImplementedError

    def tell(self, trial: Trial, metrics: dict[str, float]) -> None:
        """Most searchers learn nothing."""


# ---------------------------------------------------------------------- tree-based searchers


class Book:
    """The exploration as the driver sees it: log entries, and every node asked for (finished or in flight)."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.entries: list[Entry] = []
        self.records: dict[int, NodeRecord] = {}
        self.mutations: dict[int, str] = {}

    def add(self, record: NodeRecord, mutation: str = "") -> None:
        """A node in flight, with its Mutation line's text."""
        self.records[record.node_id] = record
        self.mutations[record.node_id] = mutation

    def next_id(self) -> int:
        return len(self.records) + 1

    def in_flight(self) -> list[NodeRecord]:
        return [r for r in self.records.values() if not r.finished]

    def finish(self, node_id: int, metrics: dict[str, float]) -> None:
        """The entry the driver writes for a finished job (agent/analysis.py `outcome_of`)."""
        record = self.records[node_id]
        outcome = outcome_of(self.spec, metrics, metrics_failure(metrics))
        record.iteration = len(self.entries) + 1
        self.entries.append(
            Entry(
                iteration=record.iteration,
                status=outcome.status,
                node_id=node_id,
                parent=record.parent,
                mode=record.mode,
                slot=record.slot,
                config=config_line(self.spec.space, record.params, record.seed),
                metrics=dict(metrics),
                mutation=self.mutations.pop(node_id),
                failure=outcome.failure,
            )
        )

    def tree(self) -> Tree:
        return self.state().tree

    def state(self) -> Snapshot:
        return Snapshot.build(self.spec, self.entries, self.in_flight())


class UcbxSearcher(Searcher):
    name = "ucbx"

    def __init__(self, task: Task, seed: int, budget: int):
        super().__init__(task, seed, budget)
        self.spec = replace(task.spec, exploration=replace(task.spec.exploration, seed=seed, budget=budget))
        self.policy = Policy(self.spec, load_playbook(self.spec.exploration.playbook))
        self.book = Book(self.spec)

    def ask(self, slot: int) -> Trial | None:
        proposal = self.policy.propose(self.book.state(), slot)
        if proposal is None:
            return None
        node_id = self.book.next_id()
        self.book.add(proposal.as_record(node_id), proposal.mutation_text(self.spec.space))
        return Trial(slot, dict(proposal.params), proposal.seed, node_id)

    def tell(self, trial: Trial, metrics: dict[str, float]) -> None:
        self.book.finish(trial.handle, metrics)


class PublicRuleSearcher(Searcher):
    name = "public-rule"

    def __init__(self, task: Task, seed: int, budget: int):
        super().__init__(task, seed, budget)
        self.book = Book(self.spec)

    def ask(self, slot: int) -> Trial | None:
        params, parent = self.spec.base_params(), None
        if any(r.slot == slot for r in self.book.records.values()):
            chosen = choose_parent(puct(self.book.tree(), PUBLIC_C))
            if chosen is not None:
                parent = chosen.node_id
                params = dict(self.book.records[parent].params)
            params = self.mutate(params)
        node_id = self.book.next_id()
        self.book.add(
            NodeRecord(
                node_id=node_id, parent=parent, slot=slot, params=params, seed=self.spec.base_seed(), mode="exploit"
            )
        )
        return Trial(slot, params, self.spec.base_seed(), node_id)

    def mutate(self, params: dict[str, Any]) -> dict[str, Any]:
        parameter = self.rng.choice(list(self.spec.space))
        value = params[parameter.key]
        if parameter.kind in ("choice", "bool"):
            options = parameter.choices if parameter.kind == "choice" else (True, False)
            new = self.rng.choice([option for option in options if option != value])
        else:
            new = value * 2 if self.rng.random() < 0.5 else value / 2
            new = min(max(new, parameter.low), parameter.high)
            new = int(round(new)) if parameter.kind == "int" else float(new)
        return {**params, parameter.key: new}

    def tell(self, trial: Trial, metrics: dict[str, float]) -> None:
        self.book.finish(trial.handle, metrics)


# ---------------------------------------------------------------------- the peers: base first, worst value told


def told_value(spec: Spec, metrics: dict[str, float]) -> float:
    """The value a peer learns from one run: its reward, or `WORST_REWARD` for a crash, divergence or nan."""
    reward = spec.objective.score(metrics).reward
    if metrics_failure(metrics) or reward is None:
        return WORST_REWARD
    return reward


class Peer(Searcher):
    """A searcher that runs the base config first on every slot, as ucbx does, then its own proposals."""

    def __init__(self, task: Task, seed: int, budget: int):
        super().__init__(task, seed, budget)
        self.started: set[int] = set()

    def ask(self, slot: int) -> Trial | None:
        if slot not in self.started:
            self.started.add(slot)
            return Trial(slot, self.spec.base_params(), self.spec.base_seed())
        return self.propose(slot)

    def propose(self, slot: int) -> Trial | None:
        raise NotImplementedError


def random_value(parameter: Parameter, rng: random.Random) -> Any:
    if parameter.kind == "choice":
        return rng.choice(parameter.choices)
    if parameter.kind == "bool":
        return rng.random() < 0.5
    if parameter.log:
        value = 10 ** rng.uniform(math.log10(parameter.low), math.log10(parameter.high))
    else:
        value = rng.uniform(parameter.low, parameter.high)
    return min(max(int(round(value)), parameter.low), parameter.high) if parameter.kind == "int" else value


class RandomSearcher(Peer):
    name = "random"

    def propose(self, slot: int) -> Trial | None:
        return Trial(slot, {p.key: random_value(p, self.rng) for p in self.spec.space}, self.spec.base_seed())


def grid_levels(parameter: Parameter, k: int) -> list[Any]:
    if parameter.kind == "choice":
        return list(parameter.choices)
    if parameter.kind == "bool":
        return [False, True]
    low, high = parameter.low, parameter.high
    if parameter.log:
        low, high = math.log10(low), math.log10(high)
    points = [low + (high - low) * (i + 0.5) / k for i in range(k)]  # cell centres, never the bounds
    values = [10**p if parameter.log else p for p in points]
    return sorted({int(round(v)) for v in values}) if parameter.kind == "int" else values


def grid_allowed(spec: Spec) -> bool:
    return len(spec.space.parameters) <= GRID_MAX_PARAMETERS


class GridSearcher(Peer):
    name = "grid"

    def __init__(self, task: Task, seed: int, budget: int):
        super().__init__(task, seed, budget)
        parameters = list(self.spec.space)
        k = 1
        while math.prod(len(grid_levels(p, k)) for p in parameters) < budget:
            k += 1
        self.points = [
            dict(zip([p.key for p in parameters], values))
            for values in itertools.product(*(grid_levels(p, k) for p in parameters))
        ]
        self.rng.shuffle(self.points)

    def propose(self, slot: int) -> Trial | None:
        return Trial(slot, self.points.pop(), self.spec.base_seed()) if self.points else None


def distribution(optuna, parameter: Parameter):
    """The Optuna distribution of one parameter (log-scaled ones as ``log=True``)."""
    if parameter.kind == "choice":
        return optuna.distributions.CategoricalDistribution(list(parameter.choices))
    if parameter.kind == "bool":
        return optuna.distributions.CategoricalDistribution([False, True])
    if parameter.kind == "int":
        return optuna.distributions.IntDistribution(int(parameter.low), int(parameter.high), log=parameter.log)
    return optuna.distributions.FloatDistribution(parameter.low, parameter.high, log=parameter.log)


class OptunaSearcher(Searcher):
    """An Optuna sampler through `Study.ask` / `Study.tell`, one study per campaign (or per slot: `per_slot`).

    The base config is enqueued (`Study.enqueue_trial`) once per slot, so that slot's first
    ask returns it and the sampler learns from it like any other trial. A run without a
    reward is told `WORST_REWARD` (a COMPLETE trial): Optuna's samplers learn only from
    COMPLETE trials, so a FAIL would hide the cliff from them.
    """

    per_slot = False

    def __init__(self, task: Task, seed: int, budget: int):
        super().__init__(task, seed, budget)
        import optuna  # optional: the `bench` extra

        optuna.logging.set_verbosity(optuna.logging.ERROR)  # e.g. GPSampler's note that greenlet is missing
        self.optuna = optuna
        self.task = task
        self.seed = seed
        self.distributions = {p.key: distribution(optuna, p) for p in self.spec.space}
        self.studies: dict[int, Any] = {}
        self.started: set[int] = set()

    def sampler(self, seed: int):
        raise NotImplementedError

    def study(self, slot: int):
        key = slot if self.per_slot else 0
        if key not in self.studies:
            sampler = self.sampler(self.seed * 100 + key if self.per_slot else self.seed)
            self.studies[key] = self.optuna.create_study(direction="maximize", sampler=sampler)
        return self.studies[key]

    def ask(self, slot: int) -> Trial | None:
        study = self.study(slot)
        if slot not in self.started:
            self.started.add(slot)
            study.enqueue_trial(self.spec.base_params())
        trial = study.ask(self.distributions)
        return Trial(slot, dict(trial.params), self.spec.base_seed(), trial)

    def tell(self, trial: Trial, metrics: dict[str, float]) -> None:
        self.study(trial.slot).tell(trial.handle, told_value(self.spec, metrics))


class TpeSearcher(OptunaSearcher):
    """Optuna's docs for parallel (asynchronous) runs: ``multivariate=True, constant_liar=True``."""

    name = "tpe"

    def sampler(self, seed: int):
        return self.optuna.samplers.TPESampler(multivariate=True, constant_liar=True, seed=seed)


class TpePerSlotSearcher(TpeSearcher):
    """One TPE study per slot value: what a user without a slot input would run, four times smaller."""

    name = "tpe-per-slot"
    per_slot = True


class CmaEsSearcher(OptunaSearcher):
    """Optuna's CmaEsSampler started at the base config.

    ``x0`` takes external values (optuna/samplers/_cmaes.py `_init_optimizer`: "`self._x0` is
    external representations", transformed with the search space, so a log parameter's
    mean is its log10 value); sigma0 stays Optuna's default (a sixth of the narrowest range
    in that internal space). Categorical and bool parameters are not in CMA-ES's space: its
    independent sampler (RandomSampler, Optuna's default, seeded) draws them; the warning
    for that is switched off. x0 is deprecated since Optuna 4.9 (removal planned for 6.0);
    its FutureWarning is silenced here.
    """

    name = "cmaes"

    def sampler(self, seed: int):
        numeric = {p.key: get_path(self.spec.base, p.key) for p in self.spec.space if p.kind not in ("choice", "bool")}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return self.optuna.samplers.CmaEsSampler(
                x0=numeric,
                seed=seed,
                independent_sampler=self.optuna.samplers.RandomSampler(seed=seed),
                warn_independent_sampling=False,
            )


class GpSearcher(OptunaSearcher):
    """Optuna's GPSampler (Matern-5/2 ARD GP, logEI; 10 startup trials, Optuna's default).

    ``deterministic_objective`` as Optuna's docs recommend: True where the task is noise-free.
    """

    name = "gp"

    def sampler(self, seed: int):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", self.optuna.exceptions.ExperimentalWarning)
            return self.optuna.samplers.GPSampler(seed=seed, deterministic_objective=self.task.deterministic)


SEARCHERS = {
    cls.name: cls
    for cls in (
        UcbxSearcher,
        TpeSearcher,
        TpePerSlotSearcher,
        CmaEsSearcher,
        GpSearcher,
        RandomSearcher,
        GridSearcher,
        PublicRuleSearcher,
    )
}
OPTUNA_SEARCHERS = ("tpe", "tpe-per-slot", "cmaes", "gp")


def optuna_missing() -> str:
    """Why the Optuna searchers cannot run here ('' when they can)."""
    try:
        import cmaes  # noqa: F401
        import optuna  # noqa: F401
    except ImportError:
        return "optuna or cmaes is not installed (pip install -e '.[bench]')"
    return ""


def available(names: list[str], spec: Spec) -> tuple[list[str], dict[str, str]]:
    """The searchers that can run on this spec here, and why the others cannot."""
    skipped = {}
    for name in OPTUNA_SEARCHERS:
        if name in names and optuna_missing():
            skipped[name] = optuna_missing()
    if "grid" in names and not grid_allowed(spec):
        skipped["grid"] = f"more than {GRID_MAX_PARAMETERS} parameters"
    return [n for n in names if n not in skipped], skipped

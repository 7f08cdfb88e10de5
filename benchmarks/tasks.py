"""Benchmark tasks: what a searcher tunes, how one trial is scored, and how long it takes.

A task is an exploration spec (`agent.spec.Spec`: search space, slots, objective) plus
`evaluate(params, slot, seed) -> Evaluation`. Two families:

- synthetic (pure functions, milliseconds): objectives shaped like training campaigns.
  ``synthetic-lr-cliff`` (log-scaled learning rate whose optimum sits just below a
  divergence cliff: above it the run is nan), ``synthetic-slot-optimum`` (the best
  learning rate depends on the slot's fixed time_step), ``synthetic-noisy`` (the cliff
  task plus seed noise: only repeats tell luck from quality), ``synthetic-strategy``
  (a categorical code strategy of which one unlocks a higher plateau, with its own
  learning-rate optimum), and ``synthetic-lr-cliff-near`` (the cliff task started from a
  tuned default: base learning rate half a decade below the best; every other task starts
  at lr 1e-4, one to three decades below). Each landscape is drawn from the run's seed.
- standard (pure functions with known optima, reward 1 at the optimum, metric ``score``):
  ``standard-branin``, ``standard-hartmann6``, ``standard-log-ridge`` (Rosenbrock's valley
  in log10 space: two parameters that must move together), ``standard-conditional`` (an
  optimizer choice that switches which other parameters matter). Each optimum moves a
  little with the slot (`slot_units`) and is offset per seed; see benchmarks/functions.py.

Seeds: below `DEVELOPMENT_BELOW` development seeds (anyone tuning the engine may look at
them); `HELD_OUT_FROM` .. `HELD_OUT_FROM + HELD_OUT_SEEDS - 1` (7000-7029) are held out and
run once, after the engine is frozen; 1000-4999 were held out before issue 15 (1000-1009
were looked at), 5000-5029 until the replicate rule changed and 6000-6029 until the priority
fix (their figures describe the engine before each): all are development seeds now.
- trainer (real PyTorch training, seconds): the built-in trainers' demo specs
  (configs/demo.yaml, causal_demo.yaml, gflownet_demo.yaml) on their tiny presets, with
  the bounds of the parameters that set the cost narrowed so a trial stays in seconds;
  and ``trainer-metabolism-weak``, configs/demo.yaml on the preset it ships with
  (configs/metabolism/demo.yaml, lr_node_homeo 1e-5: the weak regime), bounds as written,
  tens of seconds per trial. Trainings run in worker processes through the trainer's own
  ``run(config, run_dir)``. No trainer has a known optimum (`Task.optimum` None).

`durations` gives each slot's simulated duration: the harness uses it to decide which
slot frees next, so the asynchronous order is the one real slots would produce.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import math
import random
import tempfile
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from agent.spec import ExplorationSettings, LauncherSpec, Spec, TrainerSpec, load_spec
from benchmarks.functions import (
    OPTIMIZERS,
    branin_reward,
    conditional_reward,
    hartmann6_reward,
    rosenbrock_reward,
)
from slots.config import build_slot_config, config_hash, set_path
from slots.space import Parameter, SearchSpace, SlotSet
from ucb.rewards import Band, Objective, RewardTerm

REPO = Path(__file__).resolve().parents[1]
DEVELOPMENT_BELOW = 1000  # seeds 0-999: anyone tuning the engine may look at them
HELD_OUT_FROM = 7000  # seeds 7000-7029: run once, after the engine is frozen (5000-5029, 6000-6029 are spent)
HELD_OUT_SEEDS = 30
LR_WIDTH = 0.8  # decades: how wide the learning-rate optimum is
PLATEAU = 0.95  # the synthetic tasks' best val_acc (every factor at its optimum)
STRATEGY_PLATEAU = 0.97  # synthetic-strategy's best val_acc (the unlocking strategy)
NEAR_START = -0.5  # decades from the best learning rate to the base one in "-near" tasks
TIME_STEPS = (4, 16, 32, 64)
SEED_KEY = "training.seed"


@dataclass(frozen=True)
class Evaluation:
    """One trial's metrics as the searcher sees them, and without noise (for reporting)."""

    metrics: dict[str, float]
    true_metrics: dict[str, float]


@dataclass
class Task:
    """A spec, a way to score one trial, and the slots' simulated durations."""

    name: str
    family: str  # synthetic | trainer
    spec: Spec
    durations: tuple[float, ...]
    evaluate: Callable[[dict[str, Any], int, int | None], Evaluation]
    start: Callable[[dict[str, Any], int, int | None], Any] | None = None  # begin a trial early (trainers)
    note: str = ""
    optimum: float | None = None  # the best noise-free reward any config can reach; None: unknown (trainers)
    deterministic: bool = True  # the same config and seed always give the same metrics
    noise_free: bool = True  # true_metrics are the config's value; False: one seed's draw (the final check applies)

    def converged(self, metrics: dict[str, float]) -> bool:
        return self.spec.objective.score(metrics).classification == "converged"


# ---------------------------------------------------------------------- synthetic tasks

LR = Parameter("training.learning_rate", "float", "lr", 1e-5, 1.0, log=True, priority=1)
WEIGHT_DECAY = Parameter("training.weight_decay", "float", "wd", 1e-6, 1e-1, log=True, priority=2)
BATCH = Parameter("training.batch_size", "int", "batch", 8, 512, log=True, priority=3)
AUX = Parameter("training.aux_weight", "float", "aux", 1e-3, 10.0, log=True, priority=2)
STRATEGIES = ("baseline", "residual", "amplification", "contrastive", "curriculum")
STRATEGY = Parameter("training.strategy", "choice", "strategy", choices=STRATEGIES, priority=3, code_strategy=True)
BASE_VALUES = {LR.key: 1e-4, WEIGHT_DECAY.key: 1e-4, BATCH.key: 32, AUX.key: 0.1, STRATEGY.key: "baseline"}
ACCURACY = Objective(
    primary="val_acc",
    terms=(RewardTerm("val_acc", kind="maximize", low=0.0, high=1.0),),
    bands=(Band("converged", 0.85, 1.01), Band("partial", 0.5, 0.85)),
)  # below 0.5: failed
NO_FAILED_BAND = replace(ACCURACY, bands=(Band("converged", 0.85, 1.01), Band("partial", 0.0, 0.85)))


def synthetic_spec(
    name: str,
    parameters: tuple[Parameter, ...],
    start: dict[str, Any],
    objective: Objective = ACCURACY,
    base_values: dict[str, Any] = BASE_VALUES,
) -> Spec:
    """A spec for a pure-function task: four slots (time_step 4/16/32/64), one seed replicate."""
    base: dict[str, Any] = {"training": {"seed": 0, "time_step": TIME_STEPS[0]}}
    for parameter in parameters:
        base = set_path(base, parameter.key, start.get(parameter.key, base_values[parameter.key]))
    return Spec(
        path=Path(f"<{name}>"),
        name=name.replace("-", "_"),
        trainer=TrainerSpec(command=("<pure function>",), base_config=Path(f"<{name}>"), seed_key=SEED_KEY),
        slots=SlotSet("training.time_step", TIME_STEPS),
        space=SearchSpace(parameters),
        frozen=(),
        objective=objective,
        exploration=ExplorationSettings(replicates=1),
        launcher=LauncherSpec(),
        base=base,
        raw={},
    )


def bump(log_value: float, center: float, width: float) -> float:
    """A Gaussian bump in log10 space: 1 at ``center``, 0.61 one ``width`` away."""
    return math.exp(-0.5 * ((log_value - center) / width) ** 2)


@dataclass(frozen=True)
class Landscape:
    """The hidden optimum of one task instance, drawn from the run's seed."""

    log_lr: float  # log10 of the best learning rate (slot 16 for the slot task)
    cliff: float  # decades above the best learning rate where training diverges
    log_wd: float
    log_batch: float
    strategy: str  # the strategy that unlocks the high plateau
    noise_seed: int = field(default=0)

    @classmethod
    def draw(cls, seed: int) -> Landscape:
        rng = random.Random(f"landscape-{seed}")
        return cls(
            log_lr=rng.uniform(-3.0, -1.0),
            cliff=rng.uniform(0.2, 0.5),
            log_wd=rng.uniform(-5.0, -2.0),
            log_batch=rng.uniform(1.2, 2.4),
            strategy=rng.choice(STRATEGIES[1:]),
            noise_seed=seed,
        )


def accuracy(landscape: Landscape, params: dict[str, Any], lr_shift: float = 0.0, plateau: float = PLATEAU) -> float:
    """val_acc of a cliff-shaped learning-rate landscape; nan above the cliff (diverged)."""
    log_lr = math.log10(params[LR.key])
    best = landscape.log_lr + lr_shift
    if log_lr > best + landscape.cliff:
        return math.nan
    value = plateau * bump(log_lr, best, LR_WIDTH)
    if WEIGHT_DECAY.key in params:
        value *= 0.6 + 0.4 * bump(math.log10(params[WEIGHT_DECAY.key]), landscape.log_wd, 1.0)
    if BATCH.key in params:
        value *= 0.8 + 0.2 * bump(math.log10(params[BATCH.key]), landscape.log_batch, 0.5)
    return value


def lr_cliff(landscape: Landscape, params: dict[str, Any], slot: int) -> float:
    return accuracy(landscape, params)


def slot_optimum(landscape: Landscape, params: dict[str, Any], slot: int) -> float:
    """The best learning rate scales as 16 / time_step: longer rollouts need smaller steps."""
    return accuracy(landscape, params, lr_shift=math.log10(16 / TIME_STEPS[slot]))


def strategy_plateau(landscape: Landscape, params: dict[str, Any], slot: int) -> float:
    """Baseline tops out at 0.6; the unlocking strategy reaches 0.97 with its own lr and aux weight."""
    strategy = params[STRATEGY.key]
    if strategy != landscape.strategy:
        plateau = 0.6 if strategy == "baseline" else 0.5
        return accuracy(landscape, {LR.key: params[LR.key]}, plateau=plateau)
    value = accuracy(landscape, {LR.key: params[LR.key]}, lr_shift=-0.5, plateau=STRATEGY_PLATEAU)
    return value * (0.7 + 0.3 * bump(math.log10(params[AUX.key]), 0.0, 1.0))


def seed_noise(landscape: Landscape, params: dict[str, Any], slot: int, seed: int | None, scale: float) -> float:
    """Deterministic noise of one (config, seed): a seeded training gives the same result twice."""
    text = f"{landscape.noise_seed}|{slot}|{seed}|{sorted((k, repr(v)) for k, v in params.items())}"
    digest = int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)
    return random.Random(digest).gauss(0.0, scale)


def synthetic_task(
    name: str,
    function: Callable,
    parameters: tuple[Parameter, ...],
    seed: int,
    noise: float = 0.0,
    near_start: bool = False,
    note: str = "",
    optimum: float = PLATEAU,
) -> Task:
    """``near_start``: the base learning rate is `NEAR_START` decades below this landscape's best one."""
    landscape = Landscape.draw(seed)
    start = {LR.key: float(f"{10 ** (landscape.log_lr + NEAR_START):.3g}")} if near_start else {}

    def evaluate(params: dict[str, Any], slot: int, trial_seed: int | None) -> Evaluation:
        true = function(landscape, params, slot)
        observed = true + seed_noise(landscape, params, slot, trial_seed, noise) if noise else true
        return Evaluation({"val_acc": observed}, {"val_acc": true})

    durations = tuple(float(t) for t in TIME_STEPS)
    spec = synthetic_spec(name, parameters, start)
    return Task(name, "synthetic", spec, durations, evaluate, note=note, optimum=optimum, deterministic=not noise)


SYNTHETIC = {
    "synthetic-lr-cliff": lambda seed: synthetic_task(
        "synthetic-lr-cliff",
        lr_cliff,
        (LR, WEIGHT_DECAY, BATCH),
        seed,
        note="lr optimum 0.2-0.5 decades below a nan cliff; wd and batch matter less",
    ),
    "synthetic-slot-optimum": lambda seed: synthetic_task(
        "synthetic-slot-optimum",
        slot_optimum,
        (LR, WEIGHT_DECAY, BATCH),
        seed,
        note="best lr = lr* x 16/time_step: each slot has its own optimum",
    ),
    "synthetic-noisy": lambda seed: synthetic_task(
        "synthetic-noisy",
        lr_cliff,
        (LR, WEIGHT_DECAY, BATCH),
        seed,
        noise=0.05,
        note="lr-cliff plus seed noise (sd 0.05); reported values are noise-free",
    ),
    "synthetic-lr-cliff-near": lambda seed: synthetic_task(
        "synthetic-lr-cliff-near",
        lr_cliff,
        (LR, WEIGHT_DECAY, BATCH),
        seed,
        near_start=True,
        note="lr-cliff with the base lr half a decade below the best (a tuned default); sensitivity task",
    ),
    "synthetic-strategy": lambda seed: synthetic_task(
        "synthetic-strategy",
        strategy_plateau,
        (STRATEGY, LR, AUX),
        seed,
        note="one of 4 code strategies unlocks 0.97 (baseline tops at 0.6); a code strategy",
        optimum=STRATEGY_PLATEAU,
    ),
}


# ---------------------------------------------------------------------- standard functions


def score_objective(converged: float) -> Objective:
    """Standard tasks: metric ``score`` is the reward; converged from ``converged`` up; no failed band."""
    return Objective(
        primary="score",
        terms=(RewardTerm("score", kind="maximize", low=0.0, high=1.0),),
        bands=(Band("converged", converged, 1.01), Band("partial", 0.0, converged)),
    )


def slot_units(slot: int) -> float:
    """log2(time_step / 16): -2, 0, 1, 2 for slots 4/16/32/64; how far a slot shifts a standard task's optimum."""
    return math.log2(TIME_STEPS[slot] / 16)


def standard_task(
    name: str,
    parameters: tuple[Parameter, ...],
    base_values: dict[str, Any],
    reward: Callable[[dict[str, Any], int], float],
    converged: float,
    note: str,
) -> Task:
    """A pure function of the parameters and the slot, its reward reported as metric ``score`` (optimum 1)."""

    def evaluate(params: dict[str, Any], slot: int, trial_seed: int | None) -> Evaluation:
        value = reward(params, slot)
        return Evaluation({"score": value}, {"score": value})

    spec = synthetic_spec(name, parameters, {}, score_objective(converged), base_values)
    durations = tuple(float(t) for t in TIME_STEPS)
    return Task(name, "standard", spec, durations, evaluate, note=note, optimum=1.0)


def unit(name: str, low: float, high: float, priority: int) -> Parameter:
    return Parameter(f"function.{name}", "float", name, low, high, priority=priority)


BRANIN_X = (unit("x1", -5.0, 10.0, 1), unit("x2", 0.0, 15.0, 2))
BRANIN_BASE = {"function.x1": 2.5, "function.x2": 7.5}  # the box's centre: gap 23.7, reward 0.44 before the offset
BRANIN_OFFSET = 1.0  # the optimum moves by up to this much per coordinate, drawn per seed
SLOT_SHIFT = 0.01  # fraction of a coordinate's range the optimum moves per slot unit (`slot_units`)


def branin_landscape(seed: int) -> list[float]:
    """How far this seed moves Branin's minima, per coordinate."""
    rng = random.Random(f"branin-{seed}")
    return [rng.uniform(-BRANIN_OFFSET, BRANIN_OFFSET) for _ in BRANIN_X]


def branin_task(seed: int) -> Task:
    offset = branin_landscape(seed)

    def reward(params: dict[str, Any], slot: int) -> float:
        x = [params[p.key] - d - SLOT_SHIFT * (p.high - p.low) * slot_units(slot) for p, d in zip(BRANIN_X, offset)]
        return branin_reward(*x)

    return standard_task(
        "standard-branin",
        BRANIN_X,
        BRANIN_BASE,
        reward,
        0.95,
        "Branin, three global minima, each moved by a seed offset (<= 1 per coordinate) and 0.15 per slot unit",
    )


HARTMANN_X = tuple(unit(f"x{i + 1}", 0.0, 1.0, i + 1) for i in range(6))
HARTMANN_BASE = {p.key: 0.5 for p in HARTMANN_X}  # the cube's centre: reward about 0.15
HARTMANN_OFFSET = 0.05


def hartmann_landscape(seed: int) -> tuple[list[int], list[float]]:
    """(order, offset): Hartmann-6's coordinate i is parameter ``order[i]``, its optimum moved by ``offset[i]``."""
    rng = random.Random(f"hartmann6-{seed}")
    order = list(range(6))
    rng.shuffle(order)
    return order, [rng.uniform(-HARTMANN_OFFSET, HARTMANN_OFFSET) for _ in HARTMANN_X]


def hartmann_task(seed: int) -> Task:
    """Hartmann-6 with its coordinates permuted and its optimum offset per seed (it stays inside the cube)."""
    order, offset = hartmann_landscape(seed)

    def reward(params: dict[str, Any], slot: int) -> float:
        x = [params[HARTMANN_X[order[i]].key] - offset[i] - SLOT_SHIFT * slot_units(slot) for i in range(6)]
        return hartmann6_reward(tuple(x))

    return standard_task(
        "standard-hartmann6",
        HARTMANN_X,
        HARTMANN_BASE,
        reward,
        0.97,
        "Hartmann-6, coordinates permuted and optimum offset (<= 0.05) per seed, 0.01 per slot unit; "
        "converged >= 0.97 excludes the second local minimum (0.964)",
    )


RIDGE_LR = Parameter("training.learning_rate", "float", "lr", 1e-5, 1e-1, log=True, priority=1)
RIDGE_INIT = Parameter("training.init_scale", "float", "init", 1e-4, 1.0, log=True, priority=2)
RIDGE_BASE = {RIDGE_LR.key: 1e-4, RIDGE_INIT.key: 1e-3}  # (x, y) = (-1, 0): f 104, reward 0.41 before the offset
RIDGE_OFFSET = 0.5  # decades


def ridge_landscape(seed: int) -> list[float]:
    """How far this seed moves the valley's optimum, in decades of (lr, init_scale)."""
    rng = random.Random(f"ridge-{seed}")
    return [rng.uniform(-RIDGE_OFFSET, RIDGE_OFFSET) for _ in range(2)]


def ridge_task(seed: int) -> Task:
    """Rosenbrock's valley in log10 space: x = log10(lr) + 3, y = log10(init_scale) + 3 (optimum lr = init = 1e-2)."""
    offset = ridge_landscape(seed)

    def reward(params: dict[str, Any], slot: int) -> float:
        shift = SLOT_SHIFT * 4 * slot_units(slot)  # both ranges span 4 decades
        x = math.log10(params[RIDGE_LR.key]) + 3 - offset[0] - shift
        y = math.log10(params[RIDGE_INIT.key]) + 3 - offset[1] - shift
        return rosenbrock_reward(x, y)

    return standard_task(
        "standard-log-ridge",
        (RIDGE_LR, RIDGE_INIT),
        RIDGE_BASE,
        reward,
        0.95,
        "Rosenbrock's curved valley in log10(lr), log10(init_scale): both must move together; optimum offset "
        "<= 0.5 decades per seed, 0.04 decades per slot unit",
    )


CONDITIONAL_PARAMETERS = (
    Parameter("training.optimizer", "choice", "optimizer", choices=OPTIMIZERS, priority=1),
    Parameter("training.learning_rate", "float", "lr", 1e-5, 1.0, log=True, priority=2),
    Parameter("training.momentum", "float", "momentum", 0.0, 0.99, priority=3),
    Parameter("training.beta1", "float", "beta1", 0.5, 0.99, priority=4),
    Parameter("training.warmup_steps", "int", "warmup", 1, 1000, log=True, priority=5),
    Parameter("training.weight_decay", "float", "wd", 1e-6, 1e-1, log=True, priority=6),
    Parameter("training.dropout", "float", "dropout", 0.0, 0.8, priority=7),
)
CONDITIONAL_NAMES = ("optimizer", "lr", "momentum", "beta1", "warmup", "wd", "dropout")
CONDITIONAL_LOG = ("lr", "warmup", "wd")
CONDITIONAL_BASE = {
    "training.optimizer": "sgd",
    "training.learning_rate": 1e-3,
    "training.momentum": 0.5,
    "training.beta1": 0.9,
    "training.warmup_steps": 10,
    "training.weight_decay": 1e-4,
    "training.dropout": 0.5,
}
CONDITIONAL_CLIFF = 1.0  # decades above an optimizer's best lr where its runs diverge (nan)
CONDITIONAL_PEAKS = (1.0, 0.8, 0.65)  # the optimizers' ceilings, dealt out per seed


def conditional_landscape(seed: int) -> tuple[dict[str, float], dict[str, float]]:
    """(optimum, peaks): each optimizer's best log10 lr, the other settings' best values, each optimizer's ceiling."""
    rng = random.Random(f"conditional-{seed}")
    lr_sgd = rng.uniform(-2.0, -0.5)
    optimum = {
        "lr_sgd": lr_sgd,
        "lr_adam": lr_sgd - rng.uniform(1.0, 1.5),
        "lr_adagrad": lr_sgd - rng.uniform(0.0, 0.5),
        "momentum": rng.uniform(0.8, 0.95),
        "beta1": rng.uniform(0.7, 0.95),
        "warmup": rng.uniform(1.0, 2.5),
        "wd": rng.uniform(-5.0, -2.0),
        "dropout": rng.uniform(0.05, 0.4),
    }
    peaks = list(CONDITIONAL_PEAKS)
    rng.shuffle(peaks)
    return optimum, dict(zip(OPTIMIZERS, peaks))


def conditional_task(seed: int) -> Task:
    optimum, peaks = conditional_landscape(seed)

    def reward(params: dict[str, Any], slot: int) -> float:
        settings = {n: params[p.key] for n, p in zip(CONDITIONAL_NAMES, CONDITIONAL_PARAMETERS)}
        for name in CONDITIONAL_LOG:
            settings[name] = math.log10(settings[name])
        settings["lr"] += 0.1 * slot_units(slot)  # longer rollouts want a smaller lr
        if settings["lr"] > optimum[f"lr_{settings['optimizer']}"] + CONDITIONAL_CLIFF:
            return math.nan
        return conditional_reward(settings, optimum, peaks)

    return standard_task(
        "standard-conditional",
        CONDITIONAL_PARAMETERS,
        CONDITIONAL_BASE,
        reward,
        0.9,
        "optimizer choice (sgd/adam/adagrad, ceilings 1/0.8/0.65 dealt per seed) switches which of momentum, "
        "beta1, warmup matter; each optimizer its own lr, nan 1 decade above it",
    )


STANDARD = {
    "standard-branin": branin_task,
    "standard-hartmann6": hartmann_task,
    "standard-log-ridge": ridge_task,
    "standard-conditional": conditional_task,
}
SEEDED = {**SYNTHETIC, **STANDARD}  # every task whose landscape is drawn from the run's seed


# ---------------------------------------------------------------------- trainer tasks


@dataclass(frozen=True)
class TrainerSetup:
    """How a built-in trainer's demo spec becomes an affordable benchmark task."""

    module: str  # trainers.<module>.train.run
    spec: str  # configs/<spec>
    preset: str  # configs/<preset>
    highs: dict[str, Any]  # narrowed upper bounds (cost)
    durations: tuple[float, ...]  # per slot, relative


TRAINERS = {
    "metabolism": TrainerSetup(
        "metabolism",
        "demo.yaml",
        "metabolism/tiny.yaml",
        {"training.data_augmentation_loop": 100, "training.batch_size": 16},
        tuple(float(t) for t in TIME_STEPS),
    ),
    "causal": TrainerSetup(
        "causal", "causal_demo.yaml", "causal/tiny.yaml", {"model.latent_dim": 32, "model.hidden_dim": 64}, (1.0, 1.0)
    ),
    # The demo's weak regime as shipped: configs/metabolism/demo.yaml (lr_node_homeo 1e-5), bounds unchanged;
    # tens of seconds per trial on 2 cores, so it runs with few seeds only.
    "metabolism-weak": TrainerSetup(
        "metabolism", "demo.yaml", "metabolism/demo.yaml", {}, tuple(float(t) for t in TIME_STEPS)
    ),
    "gflownet": TrainerSetup(
        "gflownet",
        "gflownet_demo.yaml",
        "gflownet/tiny.yaml",
        {"model.d_model": 64, "model.n_layers": 3, "training.batch_size": 64},
        (8.0, 12.0),
    ),
}


def trainer_spec(name: str, setup: TrainerSetup, folder: Path) -> Spec:
    """The demo spec on the tiny preset with the narrowed bounds, loaded and validated by `load_spec`."""
    raw = yaml.safe_load((REPO / "configs" / setup.spec).read_text(encoding="utf-8"))
    raw["trainer"]["base_config"] = str(REPO / "configs" / setup.preset)
    for key, high in setup.highs.items():
        raw["search_space"][key]["high"] = high
    path = folder / f"{name}_bench.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return load_spec(path)


def metrics_failure(metrics: dict[str, float]) -> str:
    """The failure kind the launcher would give these metrics ('' for a usable run)."""
    if not metrics:
        return "crash: no metrics"
    if metrics.get("diverged") == 1 or any(not math.isfinite(v) for v in metrics.values()):
        return "diverged: nan in metrics"
    return ""


def trainer_task(name: str, folder: Path, pool: Executor) -> Task:
    """A built-in trainer as a task; identical configs are trained once (the trainers are seeded).

    A trial starts training in ``pool`` when it is launched (`Task.start`) and is waited
    for when its slot frees on the simulated clock, so up to one training per slot runs at once.
    """
    setup = TRAINERS[name]
    spec = trainer_spec(name, setup, folder)
    runs: dict[str, Future] = {}

    def start(params: dict[str, Any], slot: int, seed: int | None) -> str:
        base = set_path(spec.base, spec.trainer.seed_key, seed) if seed is not None else spec.base
        config = build_slot_config(base, spec.slots, slot, params, spec.space, spec.frozen)
        key = config_hash(config)
        if key not in runs:
            run_dir = Path(tempfile.mkdtemp(prefix=f"{name}_", dir=folder))
            runs[key] = pool.submit(train, setup.module, config, run_dir)
        return key

    def evaluate(params: dict[str, Any], slot: int, seed: int | None) -> Evaluation:
        metrics = runs[start(params, slot, seed)].result()
        return Evaluation(metrics, metrics)

    return Task(
        f"trainer-{name}",
        "trainer",
        spec,
        setup.durations,
        evaluate,
        start=start,
        note=f"configs/{setup.spec} on configs/{setup.preset}, highs {setup.highs}",
        deterministic=False,
        noise_free=False,
    )


def train(module: str, config: dict, run_dir: Path) -> dict[str, float]:
    """One real training (trainers.<module>.train.run); its output goes to files; a crash gives no metrics."""
    run = importlib.import_module(f"trainers.{module}.train").run
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    with open(run_dir / "stdout.txt", "w") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            return {k: float(v) for k, v in run(config_path, run_dir / "run").items()}
        except Exception as error:  # a crashed trial, as the launcher sees it
            print(f"crash: {error!r}")
            return {}


def make_task(name: str, seed: int, folder: Path, pool: Executor | None = None, failed_band: bool = True) -> Task:
    """The task ``name`` for the run seeded ``seed`` (synthetic landscapes depend on it; trainers need a pool).

    ``failed_band=False`` (synthetic tasks): every finite val_acc below 0.85 is classified
    partial instead of failed below 0.5, so only nan runs are failures.
    """
    if name not in SEEDED:
        return trainer_task(name.removeprefix("trainer-"), folder, pool)
    task = SEEDED[name](seed)
    if not failed_band and name in SYNTHETIC:
        task.spec = replace(task.spec, objective=NO_FAILED_BAND)
    return task


TASK_NAMES = tuple(SEEDED) + tuple(f"trainer-{name}" for name in TRAINERS)

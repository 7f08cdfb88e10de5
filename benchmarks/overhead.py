"""Decision overhead: what ucbx costs per decision and per daemon pass, against the log's size.

Five measurements at each size n (entries in the log; benchmarks/ucb_scaling.py's
generator, bushy shape, completed with every searched value and reward metric of
configs/demo.yaml so the surrogate has data):

- **decision**: what a running daemon does when a slot frees, after one more entry:
  the snapshot updated with the entry (`Snapshot.add_entry`) and `Policy.propose` for
  one slot, surrogate included (the policy object lives on, as in the daemon, so the
  kernel is tuned every `TUNE_EVERY` results and refitted cheaply in between). Median
  and maximum of ``repeat`` decisions;
- **boundary decision**: one decision when a code change is due (once per block): each
  code strategy, alone and paired with each number's candidate values, is scored
  (about 12x the candidates of a decision);
- **kernel tuning**: one optimisation of the kernel's hyperparameters on the same runs
  (a decision does it after a quarter more results, at most every `TUNE_EVERY`);
- **pass**: one full daemon pass on a real folder (`Exploration.step`) with every slot
  busy and one job just finished: its entry written, the memory, the scores file, the
  git commit, a proposal for the freed slot and its launch (a real local process). The
  folder is warm: its first pass (parsing the whole log, building the tree, filling the
  slots) is not counted, as in a running daemon. Median of ``repeat`` passes;
- **tpe ask**: Optuna's TPE (multivariate, constant liar, as benchmarks/searchers.py
  configures it) asking one trial of the same search space with n finished trials
  (only when optuna is installed; sizes above ``tpe_max`` are not run).

`demo_fraction` runs a real exploration (configs/demo.yaml on the tiny metabolism preset,
local launcher, 4 slots) and reports the agent's share of the wall time.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from agent.daemon import stop_local_jobs
from agent.driver import Exploration
from agent.folder import ExplorationFolder
from agent.history import config_line
from agent.playbook import load_playbook
from agent.policy import Policy
from agent.snapshot import Snapshot
from agent.spec import Spec, load_spec
from agent.surrogate import Surrogate
from benchmarks.searchers import random_value
from benchmarks.tasks import REPO
from benchmarks.ucb_scaling import synthetic_log
from memory.notebook import format_entry, parse_notebook
from trainers.metabolism.evaluate import worst_ratio

DEMO_SPEC = REPO / "configs" / "demo.yaml"
JOB_END_WAIT_S = 30.0  # for a cancelled job's runner to finish writing
MEASURES = ("decision", "decision max", "boundary decision", "kernel tuning", "pass", "tpe ask")
# a trainer that waits: the slots stay busy until the benchmark ends a job itself
WAITING_JOB = [sys.executable, "-c", "import time; time.sleep(3600)", "{config}", "{run_dir}"]


@dataclass(frozen=True)
class Decision:
    nodes: int
    seconds: dict[str, float | None]  # per measure; None = not run


STRATEGY = "training.phase2_strategy"  # the demo spec's code strategy


def campaign_log(n: int, spec: Spec) -> str:
    """ucb_scaling's synthetic log with complete Config lines and the spec's reward metrics; every
    `n_iter_block`-th entry changes the code strategy (so a decision is at a block boundary as
    often as in a campaign ucbx runs, not at every decision)."""
    rng = random.Random(n)
    parsed = parse_notebook(synthetic_log(n, "bushy"))
    parts = []
    code_changes = 0
    for entry in parsed.entries:
        params = {p.key: random_value(p, rng) for p in spec.space}
        code_changes_due = entry.iteration // spec.exploration.n_iter_block > code_changes
        if code_changes_due and not entry.is_replicate:  # a code change once per block, as ucbx makes them
            code_changes += 1
            strategy = spec.space.get(STRATEGY)
            params[STRATEGY] = rng.choice(strategy.choices[1:])
            entry.mutation = f"{strategy.short}: {strategy.choices[0]} -> {params[STRATEGY]}"
        entry.config = config_line(spec.space, params, 0)
        ratio = entry.metrics["avg_slope_ratio"]
        ratios = (ratio * rng.uniform(0.8, 1.2), ratio * rng.uniform(0.8, 1.2))
        accuracy = rng.uniform(0.5, 1.0)
        entry.metrics.update(
            {
                "MLP_node_slope_ratio_0": ratios[0],
                "MLP_node_slope_ratio_1": ratios[1],
                "worst_slope_ratio": worst_ratio(ratios),
                "embedding_cluster_acc": accuracy,
                "embedding_cluster_acc_strict": accuracy * rng.uniform(0.8, 1.0),
                "rate_constants_R2": 0.999,
                "rate_constants_R2_drop": 0.0,
            }
        )
        parts.append(format_entry(entry))
    return "".join(parts)


@dataclass(frozen=True)
class Decisions:
    seconds: list[float]  # one per decision, each after one more entry
    boundary: float | None  # the decision that changes a code strategy (once per block)
    tuning: float  # optimising the kernel's hyperparameters (every `TUNE_EVERY` results at most)


def decisions(spec: Spec, text: str, repeat: int) -> Decisions:
    """Seconds of ``repeat`` decisions, each after one more entry, by one long-lived policy; then
    one decision at a block boundary and one tuning of the kernel on the same snapshot."""
    entries = parse_notebook(text).entries
    snapshot = Snapshot.build(spec, entries[:-repeat])
    policy = Policy(spec, load_playbook(spec.exploration.playbook))
    surrogates = policy.surrogates
    surrogates.get(snapshot.finished)  # the daemon's first decision fits and tunes the surrogate
    seconds = []
    for entry in entries[-repeat:]:
        start = time.perf_counter()
        snapshot.add_entry(entry)
        policy.propose(snapshot, entry.slot or 0)
        seconds.append(time.perf_counter() - start)
    # a code change due now (a block has just ended): the policy is told so, the snapshot is not rebuilt
    policy.at_block_boundary = lambda _: True
    boundary = None  # no engine decision (every slot's decision was a replicate or a baseline)
    for slot in range(spec.n_slots):  # the first slot whose decision is the engine's (not a replicate)
        start = time.perf_counter()
        proposal = policy.propose(snapshot, slot)
        if proposal is not None and "expected improvement" in proposal.rationale:
            boundary = time.perf_counter() - start
            break
    start = time.perf_counter()
    Surrogate.fit(spec.space, spec.n_slots, snapshot.finished, spec.exploration.seed, encoder=surrogates.encoder)
    tuning = time.perf_counter() - start
    return Decisions(seconds, boundary, tuning)


def passes(spec: Spec, text: str, folder: Path, repeat: int) -> list[float]:
    """Seconds of ``repeat`` warm daemon passes, each collecting one finished job and refilling its slot."""
    layout = ExplorationFolder(folder, spec.name)
    folder.mkdir(parents=True, exist_ok=True)
    layout.log.write_text(text, encoding="utf-8")
    exploration = Exploration(spec, layout)
    exploration.prepare()
    assert len(exploration.step().launched) == spec.n_slots  # warm: the log read once, every slot busy
    seconds = []
    try:
        for _ in range(repeat):
            finish_one_job(exploration)
            start = time.perf_counter()
            report = exploration.step()
            seconds.append(time.perf_counter() - start)
            assert len(report.written) == 1 and len(report.launched) == 1, report
    finally:
        stop_local_jobs(exploration)  # ended and waited for: no runner writes into a folder being deleted
        exploration.journal.close()
    return seconds


def finish_one_job(exploration: Exploration) -> None:
    """The oldest running job ends as a finished run would: its process gone, its metrics written, done."""
    job = exploration.journal.jobs(status="running")[0]
    exploration.launcher.cancel(job)
    deadline = time.monotonic() + JOB_END_WAIT_S
    while exploration.launcher.poll(job).status == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    metrics = {"avg_slope_ratio": 0.9, "MLP_node_slope_ratio_0": 0.9, "MLP_node_slope_ratio_1": 0.9}
    metrics.update({"embedding_cluster_acc": 0.8, "rate_constants_R2": 0.9})
    (Path(job.run_dir) / job.metrics_file).write_text("".join(f"{k}: {v}\n" for k, v in metrics.items()))
    exploration.journal.update(job.id, status="done", exit_code=0, finished_at=time.time())


def tpe_ask(spec: Spec, n: int, repeat: int) -> float | None:
    """Median seconds of one TPE ask (every parameter sampled) with ``n`` finished trials; None without optuna."""
    try:
        import optuna
    except ImportError:
        return None
    from benchmarks.searchers import distribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {p.key: distribution(optuna, p) for p in spec.space}
    rng = random.Random(n)
    sampler = optuna.samplers.TPESampler(multivariate=True, constant_liar=True, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.add_trials(
        [
            optuna.trial.create_trial(
                params={p.key: random_value(p, rng) for p in spec.space},
                distributions=distributions,
                value=rng.random(),
            )
            for _ in range(n)
        ]
    )
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        trial = study.ask(distributions)
        seconds.append(time.perf_counter() - start)
        study.tell(trial, rng.random())
    return statistics.median(seconds)


def run_overhead(
    sizes: list[int], folder: Path, repeat: int = 5, tpe_max: int = 10_000, pass_max: int = 100_000, progress=print
) -> list[Decision]:
    spec = load_spec(DEMO_SPEC, {"trainer.command": WAITING_JOB, "exploration.budget": 10**9})
    results = []
    for n in sizes:
        text = campaign_log(n, spec)
        decided = decisions(spec, text, repeat)
        seconds: dict[str, float | None] = {
            "decision": statistics.median(decided.seconds),
            "decision max": max(decided.seconds),
            "boundary decision": decided.boundary,
            "kernel tuning": decided.tuning,
            "pass": statistics.median(passes(spec, text, folder / f"pass_{n}", repeat)) if n <= pass_max else None,
            "tpe ask": tpe_ask(spec, n, repeat) if n <= tpe_max else None,
        }
        results.append(Decision(n, seconds))
        progress(f"overhead {n} entries: " + ", ".join(f"{k} {v:.4f} s" for k, v in seconds.items() if v is not None))
    return results


def table(results: list[Decision]) -> str:
    lines = [
        "| entries | " + " | ".join(f"{measure} (s)" for measure in MEASURES) + " |",
        "| ---: | " + " | ".join("---:" for _ in MEASURES) + " |",
    ]
    for result in results:
        cells = ["not run" if result.seconds[m] is None else f"{result.seconds[m]:.4f}" for m in MEASURES]
        lines.append(f"| {result.nodes:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------- agent share of a demo exploration


@dataclass(frozen=True)
class DemoShare:
    entries: int
    wall_s: float
    agent_s: float
    steps: int

    @property
    def fraction(self) -> float:
        return self.agent_s / self.wall_s


def demo_fraction(folder: Path, budget: int, poll_s: float = 1.0) -> DemoShare:
    """A real `ucbx run`-style loop on the tiny metabolism preset; time inside `step` vs wall time."""
    spec = load_spec(
        DEMO_SPEC,
        {"trainer.base_config": "metabolism/tiny.yaml", "exploration.budget": budget, "exploration.poll_s": poll_s},
    )
    exploration = Exploration(spec, ExplorationFolder(folder, spec.name))
    started, agent_s, steps = time.perf_counter(), 0.0, 0
    exploration.prepare()
    exploration.launcher.recover(exploration.journal)
    agent_s += time.perf_counter() - started
    written = 0
    while written < budget:
        start = time.perf_counter()
        report = exploration.step()
        agent_s, steps = agent_s + time.perf_counter() - start, steps + 1
        written = report.snapshot.entries_written
        time.sleep(poll_s)
    return DemoShare(written, time.perf_counter() - started, agent_s, steps)

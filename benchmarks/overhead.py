"""Decision overhead: the wall time of one ucbx decision against the size of the log.

One decision is what the driver does when a slot frees, timed step by step on a log of
n entries (benchmarks/ucb_scaling.py's generator, bushy shape, its entries completed
with every searched value and reward metric of configs/demo.yaml so the policy's
surrogate has data): parse the log, build the tree (3 nodes in flight), PUCT scores and
the scores file, the policy (`agent.driver.policy_state`, which builds the tree and PUCT
ranking again as the driver does, then `Policy.propose` for one slot, surrogate fit
included), and the writes (the new entry appended, the slot config written).

The surrogate's fit is bounded (agent/surrogate.py `MAX_POINTS`), so the policy step grows
linearly with the log; it is run up to ``policy_max`` nodes.

`demo_fraction` runs a real exploration (configs/demo.yaml on the tiny metabolism preset,
local launcher, 4 slots) through `agent.driver.Exploration.step` and reports the agent's
share of the wall time: time inside `step` / total wall time.
"""

from __future__ import annotations

import functools
import random
import time
from dataclasses import dataclass
from pathlib import Path

from agent.driver import Exploration, node_tree, policy_state
from agent.history import NodeRecord, config_line
from agent.playbook import load_playbook
from agent.policy import Policy
from agent.spec import Spec, load_spec
from benchmarks.searchers import base_params, random_value
from benchmarks.tasks import REPO
from benchmarks.ucb_scaling import best_of, synthetic_log
from memory.notebook import append_entry, format_entry, parse_notebook
from slots.config import build_slot_config, write_config
from ucb.scores import puct, scores_header, total_visits, write_scores

DEMO_SPEC = REPO / "configs" / "demo.yaml"
STEPS = ("parse", "tree", "scores", "policy", "writes")


@dataclass(frozen=True)
class Decision:
    nodes: int
    seconds: dict[str, float | None]  # per step; None = not run

    @property
    def total(self) -> float | None:
        """The whole decision; None when a step was not run."""
        return None if None in self.seconds.values() else sum(self.seconds.values())


def campaign_log(n: int, spec: Spec) -> str:
    """ucb_scaling's synthetic log with complete Config lines and the spec's reward metrics."""
    rng = random.Random(n)
    parsed = parse_notebook(synthetic_log(n, "bushy"))
    parts = []
    for entry in parsed.entries:
        params = {p.key: random_value(p, rng) for p in spec.space}
        entry.config = config_line(spec.space, params, 0)
        ratio = entry.metrics["avg_slope_ratio"]
        entry.metrics.update(
            {
                "MLP_node_slope_ratio_0": ratio * rng.uniform(0.8, 1.2),
                "MLP_node_slope_ratio_1": ratio * rng.uniform(0.8, 1.2),
                "embedding_cluster_acc": rng.uniform(0.5, 1.0),
            }
        )
        parts.append(format_entry(entry))
    return "".join(parts)


def timed(action):
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def decide(spec: Spec, text: str, folder: Path, run_policy: bool, repeat: int) -> dict[str, float | None]:
    """One decision on ``text`` (the whole log), each step timed (best of ``repeat``)."""
    measure = functools.partial(best_of, repeat)
    log_path, seconds = folder / "bench_analysis.md", {}
    log_path.write_text(text, encoding="utf-8")
    seconds["parse"], parsed = measure(lambda: parse_notebook(log_path.read_text(encoding="utf-8"), str(log_path)))
    entries = parsed.entries
    last = entries[-1].node_id
    flying = [
        NodeRecord(node_id=last + slot + 1, parent=last - slot, slot=slot + 1, params=base_params(spec))
        for slot in range(3)
    ]
    seconds["tree"], tree = measure(lambda: node_tree(spec, entries, flying))

    def scores():
        ranking = puct(tree, spec.exploration.ucb_c)
        write_scores(folder / "bench_ucb_scores.txt", ranking, tree, scores_header(total_visits(tree), 1.414))
        return ranking

    seconds["scores"], _ = measure(scores)

    def policy():
        state = policy_state(spec, entries, flying)
        return Policy(spec, load_playbook(spec.exploration.playbook)).propose(state, 0)

    seconds["policy"], proposal = measure(policy) if run_policy else (None, None)

    def writes():
        append_entry(log_path, entries[-1])
        params = proposal.params if proposal else base_params(spec)
        config = build_slot_config(spec.base, spec.slots, 0, params, spec.space, spec.frozen)
        write_config(folder / "slot_00.yaml", config)

    seconds["writes"], _ = measure(writes)
    return seconds


def run_overhead(sizes: list[int], folder: Path, policy_max: int, repeat: int = 3, progress=print) -> list[Decision]:
    spec = load_spec(DEMO_SPEC)
    folder.mkdir(parents=True, exist_ok=True)
    decisions = []
    for n in sizes:
        decision = Decision(n, decide(spec, campaign_log(n, spec), folder, n <= policy_max, repeat))
        decisions.append(decision)
        progress(
            f"overhead {n} nodes: " + ", ".join(f"{k} {v:.3f}" for k, v in decision.seconds.items() if v is not None)
        )
    return decisions


def table(decisions: list[Decision]) -> str:
    lines = [
        "| entries | " + " | ".join(f"{step} s" for step in STEPS) + " | total s |",
        "| ---: | " + " | ".join("---:" for _ in STEPS) + " | ---: |",
    ]
    for d in decisions:
        cells = ["not run" if d.seconds[s] is None else f"{d.seconds[s]:.3f}" for s in STEPS]
        total = "-" if d.total is None else f"{d.total:.3f}"
        lines.append(f"| {d.nodes:,} | " + " | ".join(cells) + f" | {total} |")
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
    exploration = Exploration(spec, folder)
    started, agent_s, steps = time.perf_counter(), 0.0, 0
    exploration.prepare()
    exploration.launcher.recover(exploration.journal)
    agent_s += time.perf_counter() - started
    while len(exploration.entries()) < budget:
        seconds, _ = timed(exploration.step)
        agent_s, steps = agent_s + seconds, steps + 1
        time.sleep(poll_s)
    return DemoShare(len(exploration.entries()), time.perf_counter() - started, agent_s, steps)

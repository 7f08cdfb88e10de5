"""Shared helpers for the agent tests: a small spec on disk, hand-made node records."""

from __future__ import annotations

import math
import textwrap
from dataclasses import replace
from pathlib import Path

import git
import yaml

from agent.history import NodeRecord, changes_text, config_line
from agent.playbook import load_playbook
from agent.policy import Policy
from agent.snapshot import Snapshot
from agent.spec import Spec, load_spec
from memory.notebook import Entry, parse_notebook
from memory.working_memory import KNOWN_SECTIONS

BASE = {
    "simulation": {"n_metabolites": 24},
    "training": {
        "seed": 7,
        "homeostasis_time_step": 4,
        "learning_rate_node_homeostasis": 0.01,
        "learning_rate_embedding_homeostasis": 0.001,
        "data_augmentation_loop": 100,
        "batch_size": 8,
        "phase2_strategy": "rollout",
    },
}

SPEC = """
name: unit
trainer:
  command: ["{python}", "trainer.py", "--config", "{config}", "--run-dir", "{run_dir}"]
  base_config: base.yaml
  seed_key: training.seed
slots:
  key: training.homeostasis_time_step
  values: [4, 16, 32, 64]
search_space:
  training.learning_rate_node_homeostasis: {kind: float, low: 1.0e-4, high: 1.0, log: true,
    short: lr_node_homeo, priority: 1}
  training.learning_rate_embedding_homeostasis: {kind: float, low: 1.0e-4, high: 1.0, log: true,
    short: lr_emb_homeo, priority: 2}
  training.data_augmentation_loop: {kind: int, low: 10, high: 5000, log: true, short: data_aug, priority: 3}
  training.batch_size: {kind: int, low: 2, high: 32, log: true, short: batch_size, priority: 4}
  training.phase2_strategy:
    kind: choice
    choices: [rollout, residual, rollout+amplification, rollout+contrastive, residual+contrastive,
              rollout+lr_warmup, separate_losses, rollout+grad_accumulation]
    short: strategy
    priority: 5
    code_strategy: true
frozen: [simulation]
objective:
  primary: avg_slope_ratio
  terms:
    - {metric: avg_slope_ratio, kind: ratio, target: 1.0}
  bands:
    - {label: converged, low: 0.8, high: 1.2}
    - {label: partial, low: 0.3, high: 3.0}
exploration:
  n_iter_block: 8
  budget: 48
  replicates: 1
  playbook: metabolism
"""

LR_NODE = "training.learning_rate_node_homeostasis"
LR_EMB = "training.learning_rate_embedding_homeostasis"
STRATEGY = "training.phase2_strategy"


def write_spec(folder: Path, text: str = SPEC, base: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "base.yaml").write_text(yaml.safe_dump(base or BASE, sort_keys=False))
    path = folder / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def make_spec(folder: Path, text: str = SPEC) -> Spec:
    return load_spec(write_spec(folder, text))


def make_policy(spec: Spec) -> Policy:
    return Policy(spec, load_playbook(spec.exploration.playbook))


def root_params(**changes: float) -> dict:
    params = {key: value for key, value in BASE["training"].items() if key not in ("seed", "homeostasis_time_step")}
    params = {f"training.{key}": value for key, value in params.items()}
    params.update({f"training.{key}": value for key, value in changes.items()})
    return params


def node(
    node_id: int,
    parent: int | None,
    *,
    slot: int = 0,
    iteration: int | None = None,
    status: str = "partial",
    metrics: dict | None = None,
    reward: float | None = 0.5,
    failure: str = "",
    params: dict | None = None,
    replicate_of: int | None = None,
    seed: int = 7,
) -> NodeRecord:
    """A finished record (iteration defaults to the node id). A ``failure`` (crash, divergence...)
    means no reward; a run the bands class ``failed`` keeps its reward."""
    return NodeRecord(
        node_id=node_id,
        parent=parent,
        slot=slot,
        params=params or root_params(),
        seed=seed,
        iteration=node_id if iteration is None else iteration,
        status=status,
        metrics=metrics or {"avg_slope_ratio": 0.5, "embedding_cluster_acc": 0.8},
        reward=None if failure else reward,
        failure=failure,
        replicate_of=replicate_of,
    )


REWARD = "test_reward"  # the metric the test snapshots score, so a record's reward is what the test says


def entry_of(spec: Spec, record: NodeRecord) -> Entry:
    """The log entry the driver would have written for ``record``."""
    if record.replicate_of is not None:
        mode, parent, mutation = "replicate", record.replicate_of, f"replicate of node {record.replicate_of}"
    else:
        mode, parent = record.mode or "exploit", record.parent
        mutation = changes_text(spec.space, record.changes) if record.changes else "none (baseline)"
    reward = math.nan if record.reward is None else record.reward
    return Entry(
        iteration=record.iteration,
        status=record.status,
        node_id=record.node_id,
        parent=parent,
        mode=mode,
        slot=record.slot,
        config=config_line(spec.space, record.params, record.seed),
        metrics={**record.metrics, REWARD: reward},
        mutation=mutation,
        failure=record.failure,
    )


def state_of(records: list[NodeRecord], spec: Spec, directives=(), entries_written: int | None = None) -> Snapshot:
    """The snapshot the driver would build from these records' entries (real tree, real PUCT ranking);
    rewards are the records' own. ``entries_written`` overrides the log's entry count (block tests)."""
    finished = sorted((r for r in records if r.finished), key=lambda r: r.iteration)
    in_flight = [r for r in records if not r.finished]
    entries = [entry_of(spec, r) for r in finished]
    snapshot = Snapshot.build(spec, entries, in_flight, list(directives), reward_metric=REWARD)
    if entries_written is not None:
        snapshot = replace(snapshot, entries_written=entries_written)
    return snapshot


def every_slot_started(records: list[NodeRecord]) -> list[NodeRecord]:
    """Add an old finished baseline on every slot, so proposals are mutations, not baselines."""
    started = {r.slot for r in records}
    extra = [
        node(
            100 + slot,
            None,
            slot=slot,
            iteration=0,
            reward=0.01,
            metrics={"avg_slope_ratio": 0.01, "embedding_cluster_acc": 0.5},
        )
        for slot in range(4)
        if slot not in started
    ]
    return extra + records


FAKE_TRAINER = '''"""A stand-in trainer (a real process): reads its config, writes analysis.log like a trainer."""
import argparse, time
from pathlib import Path
import yaml

parser = argparse.ArgumentParser()
parser.add_argument("--config")
parser.add_argument("--run-dir")
arguments = parser.parse_args()
training = yaml.safe_load(Path(arguments.config).read_text())["training"]
gate, deadline = GATE, time.monotonic() + 600  # a gated job waits for the test's file (at most 600 s)
while gate is not None and not Path(gate).exists() and time.monotonic() < deadline:
    time.sleep(0.02)
time.sleep(SLEEP * training["homeostasis_time_step"] / 64)
lr = training["learning_rate_node_homeostasis"]
ratio = min(3.0, lr * 30 * (1 + 0.01 * (training["seed"] % 7)))
if lr > 0.2:
    ratio = float("nan")
lines = [f"avg_slope_ratio: {ratio}", f"MLP_node_slope_ratio_0: {ratio}", f"MLP_node_slope_ratio_1: {ratio}",
         f"embedding_cluster_acc: {min(1.0, 0.5 + training['learning_rate_embedding_homeostasis'] * 50)}",
         "rate_constants_R2: 0.9"]
(Path(arguments.run_dir) / "analysis.log").write_text("\\n".join(lines) + "\\n")
'''


SLURM_LAUNCHER = """launcher:
  kind: slurm
  poll_s: 0.2
  poll_max_s: 1.0
  grace_s: 2
"""


def fake_spec(folder: Path, sleep: float = 0.2, budget: int = 48, launcher: str = "", gate: Path | None = None) -> Path:
    """A spec whose trainer is FAKE_TRAINER (``sleep`` seconds for time_step=64); ``launcher``: its section.

    With ``gate``, every job first waits until that file exists: the test decides when jobs end.
    """
    folder.mkdir(parents=True, exist_ok=True)
    trainer = folder / "trainer.py"
    gate_text = repr(str(gate)) if gate is not None else "None"
    trainer.write_text(FAKE_TRAINER.replace("SLEEP", repr(sleep)).replace("GATE", gate_text))
    text = SPEC.replace('"trainer.py"', f'"{trainer}"').replace("budget: 48", f"budget: {budget}")
    return write_spec(folder, text + "  poll_s: 0.1\n" + launcher)


SHAPE = (
    "Node:",
    "Mode/Strategy:",
    "Slot:",
    "Config:",
    "Metrics:",
    "Visual:",
    "Mutation:",
    "Strategy:",
    "Observation:",
    "Next:",
)


def entry_texts(log: Path) -> list[str]:
    return ["## Iter" + chunk for chunk in log.read_text().split("## Iter")[1:]]


def check_folder(folder: Path, name: str, count: int, clean: bool = True) -> list:
    """The invariants of an exploration folder after ``count`` entries (``clean``: nothing proposed since)."""
    log = folder / f"{name}_analysis.md"
    for text in entry_texts(log):
        lines = text.splitlines()
        for prefix in SHAPE:
            assert sum(1 for line in lines if line.startswith(prefix)) == 1, (prefix, text)
    parsed = parse_notebook(log.read_text())
    assert not parsed.problems
    entries = parsed.entries
    assert [e.iteration for e in entries] == list(range(1, count + 1))
    ids = {e.node_id for e in entries}
    assert ids == set(range(1, count + 1))
    assert all(e.parent is None or e.parent in ids for e in entries)
    memory = (folder / f"{name}_memory.md").read_text()
    assert memory.count("\n") <= 300
    assert all(f"## {section}" in memory for section in KNOWN_SECTIONS + ("Directives",))
    for slot, value in enumerate((4, 16, 32, 64)):
        config = yaml.safe_load((folder / "slots" / f"slot_{slot:02d}.yaml").read_text())
        assert config["training"]["homeostasis_time_step"] == value
    repo = git.Repo(folder)
    assert sum(1 for c in repo.iter_commits() if c.message.startswith("Iter ")) == count
    assert not clean or not repo.is_dirty(untracked_files=False)
    return entries


def scores_lines(folder: Path, name: str) -> list[str]:
    return [line for line in (folder / f"{name}_ucb_scores.txt").read_text().splitlines() if line.startswith("Node ")]

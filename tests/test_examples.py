"""A user's own training script as a trainer: examples/my_train.py, directly and under `ucbx run`."""

from __future__ import annotations

import ast
import math
import subprocess
import sys
from pathlib import Path

import yaml

from agent.spec import load_spec
from memory.analysis_log import read_metrics
from memory.notebook import parse_notebook
from slots.outcome import classify_run

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SCRIPT = EXAMPLES / "my_train.py"
CONFIG = EXAMPLES / "my_train_config.yaml"
UCBX_PACKAGES = {"agent", "memory", "slots", "ucb", "trainers", "benchmarks"}


def my_train(config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--config", str(config), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )


def ucbx_run(spec: Path, workdir: Path, iterations: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.cli",
            "run",
            str(spec),
            "--workdir",
            str(workdir),
            "--iterations",
            str(iterations),
        ],
        cwd=workdir.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_script_knows_nothing_of_ucbx():
    imported = set()
    for node in ast.walk(ast.parse(SCRIPT.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported <= {"argparse", "json", "math", "pathlib", "numpy", "yaml"} and not imported & UCBX_PACKAGES


def test_jsonl_metrics_are_read_as_the_last_epoch(tmp_path):
    done = my_train(CONFIG, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == yaml.safe_load(CONFIG.read_text())["train"]["epochs"]
    metrics = read_metrics(tmp_path / "metrics.jsonl")
    assert metrics["epoch"] == len(lines) and 0.5 < metrics["val_r2"] < 1.0
    assert classify_run(tmp_path, 0, None, metrics_file="metrics.jsonl").status == "done"


def test_analysis_log_metrics_and_a_blow_up_classified_as_diverged(tmp_path):
    config = yaml.safe_load(CONFIG.read_text())
    config["train"]["lr"] = 5.0
    path = tmp_path / "hot.yaml"
    path.write_text(yaml.safe_dump(config))
    done = my_train(path, tmp_path / "run", "--metrics", "analysis.log")
    assert done.returncode == 0, done.stderr
    metrics = read_metrics(tmp_path / "run" / "analysis.log")
    assert not math.isfinite(metrics["val_loss"])
    state = classify_run(tmp_path / "run", 0, None)
    assert (state.status, state.failure_kind) == ("failed", "diverged")


def test_specs_are_valid():
    for spec in (EXAMPLES / "my_train_spec.yaml", REPO / "configs" / "command_demo.yaml"):
        assert Path(load_spec(spec).trainer.command[1]).resolve() == EXAMPLES / "my_train.py"


def test_ucbx_run_explores_the_script_end_to_end(tmp_path):
    done = ucbx_run(EXAMPLES / "my_train_spec.yaml", tmp_path / "my_train", 4)
    assert done.returncode == 0, done.stderr + done.stdout
    parse = parse_notebook((tmp_path / "my_train" / "my_train_analysis.md").read_text())
    assert len(parse.entries) == 4 and not parse.problems
    assert all("val_r2" in entry.metrics for entry in parse.entries)
    assert {entry.status for entry in parse.entries} <= {"converged", "partial", "failed"}
    assert len(list((tmp_path / "my_train" / "iterations").glob("node_*/metrics.jsonl"))) == 4

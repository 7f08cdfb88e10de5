"""The identifiable ceiling of the metabolism trainer, and the demo landscape against it (issue 17).

``ceiling``: for each scale and each value of ``training.phase1_train_node``, one run of
the real trainer with ``homeostasis_training: false`` (Phase 1 only, trained into its own
cache, then evaluated): the per-type ceiling (``MLP_node_slope_ceiling_ratio_t``: the
least-squares homeostatic slope on Phase 1's one-step residuals over the true slope),
Phase 1's rate_constants_R2 and, with the option, Phase 1's own MLP_node slope ratios.

``landscape``: Phase 2 runs of the demo preset (settings x slot values), one seed each,
reusing the cached Phase 1 of each phase1_train_node value; cells give the slope ratios,
their ratios to the ceiling, worst_slope_ratio and the noise-honest cluster accuracy.

Each run is its own process (``python -m trainers.metabolism``), one at a time, with the
thread count of the environment (run it under OMP_NUM_THREADS=1). Results go to a JSON file
(every run's metrics) and a markdown table on stdout.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.metabolism_ceiling ceiling --scales demo frames_2880
    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.metabolism_ceiling landscape --time-steps 4 16 32 64
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from memory.analysis_log import read_metrics

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DEMO = REPO / "configs" / "metabolism" / "demo.yaml"
SCALES = {
    "demo": (DEMO, {}),
    "frames_2880": (DEMO, {"simulation": {"n_frames": 2880}}),
    "seed": (REPO / "configs" / "metabolism" / "seed_scale.yaml", {}),
}
LANDSCAPE = {  # row label -> training overrides on the demo preset
    "rollout, lr_node 1e-5 (weak regime)": {"learning_rate_node_homeostasis": 1e-5},
    "rollout, lr_node 3e-5": {"learning_rate_node_homeostasis": 3e-5},
    "rollout, lr_node 1e-4": {"learning_rate_node_homeostasis": 1e-4},
    "rollout, lr_node 1e-2, lr_emb 1e-2": {
        "learning_rate_node_homeostasis": 1e-2,
        "learning_rate_embedding_homeostasis": 1e-2,
    },
    "residual, lr_node 1e-3": {"phase2_strategy": "residual", "learning_rate_node_homeostasis": 1e-3},
    "rollout+joint, lr_node 1e-4": {"phase2_strategy": "rollout+joint", "learning_rate_node_homeostasis": 1e-4},
    "rollout+joint+anchor, lr_node 1e-4": {
        "phase2_strategy": "rollout+joint+anchor",
        "learning_rate_node_homeostasis": 1e-4,
    },
    "residual+joint, lr_node 1e-3": {"phase2_strategy": "residual+joint", "learning_rate_node_homeostasis": 1e-3},
}


def merged(base: dict, overrides: dict) -> dict:
    out = {section: dict(values) if isinstance(values, dict) else values for section, values in base.items()}
    for section, values in overrides.items():
        out[section] = {**out.get(section, {}), **values}
    return out


def run_trainer(config: dict, folder: Path) -> tuple[dict[str, float], float]:
    """One training process; its metrics and wall seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "trainers.metabolism", "--config", str(config_path), "--run-dir", str(folder / "run")],
        cwd=REPO,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return read_metrics(folder / "run" / "analysis.log"), time.perf_counter() - started


def fmt(value: float, digits: int = 2) -> str:
    return "nan" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def ceiling(args: argparse.Namespace) -> list[dict]:
    rows = []
    for scale in args.scales:
        preset, overrides = SCALES[scale]
        for train_node in args.phase1_train_node:
            base = yaml.safe_load(preset.read_text())
            training = {
                "cache_dir": str(args.cache_dir),
                "phase1_train_node": train_node,
                "homeostasis_training": False,
            }
            config = merged(base, {**overrides, "training": training})
            metrics, wall = run_trainer(config, args.work / f"ceiling_{scale}_{int(train_node)}")
            rows.append({"scale": scale, "phase1_train_node": train_node, "wall_s": wall, "metrics": metrics})
            print(ceiling_row(rows[-1]), flush=True)
    return rows


def ceiling_row(row: dict) -> str:
    m = row["metrics"]
    phase1_node = (
        f"{fmt(m['MLP_node_slope_ratio_0'])} / {fmt(m['MLP_node_slope_ratio_1'])}" if row["phase1_train_node"] else "-"
    )
    return (
        f"| {row['scale']} | {str(row['phase1_train_node']).lower()} | {fmt(m['MLP_node_slope_ceiling_ratio_0'])} | "
        f"{fmt(m['MLP_node_slope_ceiling_ratio_1'])} | {phase1_node} | {fmt(m['rate_constants_R2'], 3)} | "
        f"{fmt(m['phase1_loss'] * 1e6, 1)} | {fmt(m['phase1_time_min'] * 60, 0)} |"
    )


def landscape(args: argparse.Namespace) -> list[dict]:
    rows = []
    for train_node in args.phase1_train_node:
        for label, overrides in LANDSCAPE.items():
            if args.rows and label not in args.rows:
                continue
            for time_step in args.time_steps:
                base = yaml.safe_load(DEMO.read_text())
                training = {
                    **overrides,
                    "cache_dir": str(args.cache_dir),
                    "phase1_train_node": train_node,
                    "homeostasis_time_step": time_step,
                }
                name = f"landscape_{int(train_node)}_{len(rows):03d}"
                metrics, wall = run_trainer(merged(base, {"training": training}), args.work / name)
                rows.append(
                    {
                        "phase1_train_node": train_node,
                        "settings": label,
                        "time_step": time_step,
                        "wall_s": wall,
                        "metrics": metrics,
                    }
                )
                print(f"{label} | node {train_node} | ts {time_step} | {landscape_cell(metrics)}", flush=True)
    return rows


def landscape_cell(m: dict[str, float]) -> str:
    """worst (r0/r1; vs ceiling v0/v1; strict acc, ARI)."""
    if m.get("diverged"):
        return "diverged"
    return (
        f"{fmt(m['worst_slope_ratio'])} ({fmt(m['MLP_node_slope_ratio_0'])}/{fmt(m['MLP_node_slope_ratio_1'])}; "
        f"{fmt(m['MLP_node_slope_vs_ceiling_0'])}/{fmt(m['MLP_node_slope_vs_ceiling_1'])}; "
        f"{fmt(m['embedding_cluster_acc_strict'])}, {fmt(m['embedding_ari'])})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("ceiling", "landscape"))
    parser.add_argument("--scales", nargs="+", choices=tuple(SCALES), default=["demo", "frames_2880"])
    parser.add_argument("--time-steps", nargs="+", type=int, default=[4, 16, 32, 64])
    parser.add_argument("--phase1-train-node", nargs="+", type=lambda v: v == "true", default=[False, True])
    parser.add_argument("--rows", nargs="*", default=[], help="landscape rows to run (labels); default all")
    parser.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "ucbx_ceiling")
    parser.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "ucbx_ceiling_runs")
    parser.add_argument("--out", type=Path, help="JSON file for every run's metrics")
    args = parser.parse_args(argv)
    rows = ceiling(args) if args.what == "ceiling" else landscape(args)
    out = args.out or RESULTS / f"metabolism_{args.what}.json"
    out.write_text(json.dumps(rows, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

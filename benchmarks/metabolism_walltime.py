"""Wall time of the metabolism trainer at the demo scale, and Phase 1's rate_constants_R2.

Runs the real entry point (``python -m trainers.metabolism``) as separate processes:
first one run with an empty cache (it trains and caches Phase 1), then one Phase 2 run per
slot value (4/16/32/64) reusing that cache. Prints a markdown section for BENCHMARKS.md.

    .venv/bin/python -m benchmarks.metabolism_walltime [--config configs/metabolism/demo.yaml]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import yaml

from memory.analysis_log import read_metrics

REPO = Path(__file__).resolve().parents[1]
SLOT_VALUES = (4, 16, 32, 64)


def run_trainer(base: dict, folder: Path, cache_dir: Path, time_step: int) -> tuple[dict[str, float], float, float]:
    """One training process; returns its metrics, wall time and CPU time (user + system), in seconds."""
    config = {**base, "training": {**base["training"], "cache_dir": str(cache_dir), "homeostasis_time_step": time_step}}
    folder.mkdir(parents=True)
    config_path = folder / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    started, cpu_before = time.perf_counter(), children_cpu_seconds()
    subprocess.run(
        [sys.executable, "-m", "trainers.metabolism", "--config", str(config_path), "--run-dir", str(folder / "run")],
        cwd=REPO,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall, cpu = time.perf_counter() - started, children_cpu_seconds() - cpu_before
    return read_metrics(folder / "run" / "analysis.log"), wall, cpu


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, torch {torch.__version__}, "
        f"CUDA {'yes' if torch.cuda.is_available() else 'no'}"
    )


def load_average() -> str:
    return " / ".join(f"{value:.1f}" for value in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/metabolism/demo.yaml", help="relative to the repository")
    arguments = parser.parse_args()
    base = yaml.safe_load((REPO / arguments.config).read_text())
    header, load_at_start = machine(), load_average()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ucbx_bench_") as scratch_name:
        scratch = Path(scratch_name)
        cache_dir = scratch / "cache"
        first, first_seconds, first_cpu = run_trainer(base, scratch / "phase1", cache_dir, SLOT_VALUES[0])
        for time_step in SLOT_VALUES:
            rows.append((time_step, *run_trainer(base, scratch / f"slot_{time_step}", cache_dir, time_step)))
    training = base["training"]
    print(f"### Metabolism trainer wall time (demo scale), {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n")
    print(f"Command: `.venv/bin/python -m benchmarks.metabolism_walltime --config {arguments.config}`  ")
    print(f"Machine: {header}; load average (1/5/15 min) {load_at_start} at start, {load_average()} at end  ")
    print(
        f"Phase 2 settings: strategy {training['phase2_strategy']}, data_augmentation_loop "
        f"{training['data_augmentation_loop']}, batch_size {training['batch_size']}, "
        f"torch threads per process: the trainer's default\n"
    )
    print(
        f"Phase 1 (cold cache, {training['phase1_iterations']} iterations): "
        f"{first['phase1_time_min'] * 60:.1f} s training, "
        f"process {first_seconds:.1f} s wall / {first_cpu:.1f} s CPU, "
        f"rate_constants_R2 = {first['rate_constants_R2']:.4f} "
        f"(fit {first['rate_constants_R2_fit']:.4f}, trimmed {first['rate_constants_R2_trimmed']:.4f})\n"
    )
    print(
        "| time_step | Phase 2 training wall (s) | process wall (s) | process CPU (s) | avg_slope_ratio "
        "| slope_ratio_0 | slope_ratio_1 |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for time_step, metrics, seconds, cpu in rows:
        print(
            f"| {time_step} | {metrics['phase2_time_min'] * 60:.1f} | {seconds:.1f} | {cpu:.1f} | "
            f"{metrics['avg_slope_ratio']:.3f} | {metrics['MLP_node_slope_ratio_0']:.3f} | "
            f"{metrics['MLP_node_slope_ratio_1']:.3f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

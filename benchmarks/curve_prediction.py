"""How well does a run's early progress predict its end? Rank correlation over an exploration's runs.

    python -m benchmarks.curve_prediction FOLDER

For each finished run of the exploration in FOLDER (not failed, with progress lines), the
value pruning would judge at fraction f (the objective's reward of the progress lines, or the
spec's pruning metric; interpolated between the lines that have it, memory/progress.py
`value_at`) against the run's final reward: Spearman's rho at f = 20/40/60/80%, over all runs
and per slot (what the rules compare), and the rank at f of the run that ended best.
A rule that stops runs on their value at f can only be right as often as this rho allows.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from scipy.stats import spearmanr

from agent.folder import ExplorationFolder
from agent.pruning import point_value
from memory.notebook import parse_notebook
from memory.progress import read_run_progress, value_at

FRACTIONS = (0.2, 0.4, 0.6, 0.8)


def pairs(folder: ExplorationFolder, spec, entries, fraction: float) -> tuple[list[float], list[float]]:
    """(value at ``fraction``, final reward) of each run that has both."""
    value = point_value(spec)
    early, final = [], []
    for entry in entries:
        points = read_run_progress(folder.run_dir(entry.node_id), spec.trainer.metrics_file).points
        at = value_at(points, fraction, value)
        reward = spec.objective.score(entry.metrics).reward
        if at is not None and reward is not None:
            early.append(at)
            final.append(reward)
    return early, final


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args()
    folder = ExplorationFolder.discover(args.folder)
    spec = folder.load_spec_copy()
    if spec is None:
        raise SystemExit(f"{args.folder}: no spec copy ({folder.spec_copy.name}); not an exploration folder")
    entries = [e for e in parse_notebook(folder.log.read_text(encoding="utf-8")).entries if not e.failure]
    for fraction in FRACTIONS:
        early, final = pairs(folder, spec, entries, fraction)
        if len(final) < 3:
            print(f"f={fraction:.0%}: fewer than 3 runs with a value there")
            continue
        best = max(range(len(final)), key=final.__getitem__)
        rank = sorted(early, reverse=True).index(early[best]) + 1
        rho = spearmanr(early, final).statistic
        print(f"f={fraction:.0%}: {len(final)} runs, Spearman rho {rho:.2f}; the run that ended best ranks {rank}")
    by_slot = defaultdict(list)
    for entry in entries:
        by_slot[entry.slot].append(entry)
    for slot, runs in sorted(by_slot.items()):
        parts = []
        for fraction in FRACTIONS:
            early, final = pairs(folder, spec, runs, fraction)
            rho = spearmanr(early, final).statistic if len(final) >= 3 else float("nan")
            parts.append(f"{fraction:.0%} {rho:.2f}")
        print(f"slot_{slot} ({spec.slots.label(slot)}, {len(runs)} runs): rho " + ", ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())

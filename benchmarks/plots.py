"""Figures for BENCHMARKS.md: simple regret curves, decision overhead, slot utilisation (PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.harness import Campaign, optima, regret_curve  # noqa: E402
from benchmarks.overhead import MEASURES, Decision  # noqa: E402
from benchmarks.stats import bootstrap_curves  # noqa: E402
from benchmarks.utilisation import TIME_STEPS, Utilisation  # noqa: E402

COLOURS = {
    "ucbx": "tab:red",
    "random": "tab:gray",
    "tpe": "tab:blue",
    "tpe-per-slot": "tab:cyan",
    "cmaes": "tab:orange",
    "gp": "tab:brown",
    "public-rule": "tab:green",
    "grid": "tab:purple",
}


def regret_curves(campaigns: list[Campaign], path: Path, title: str) -> None:
    """One panel per task: median simple regret per iteration per searcher, band = bootstrap 95% of the median."""
    tasks = list(dict.fromkeys(c.task for c in campaigns))
    best = optima(campaigns)
    columns = min(len(tasks), 4)
    rows = -(-len(tasks) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    for axis, task in zip(axes.flat, tasks):
        for searcher in dict.fromkeys(c.searcher for c in campaigns if c.task == task):
            group = [c for c in campaigns if c.task == task and c.searcher == searcher]
            curves = np.array([regret_curve(c, best[(c.task, c.seed)]) for c in group])
            median, low, high = bootstrap_curves(curves)
            x = np.arange(1, curves.shape[1] + 1)
            colour = COLOURS.get(searcher)
            axis.plot(x, median, label=searcher, color=colour, linewidth=2 if searcher == "ucbx" else 1.2)
            axis.fill_between(x, low, high, color=colour, alpha=0.15)
        axis.set_title(task, fontsize=10)
        axis.set_xlabel("iteration (finished trials)")
        axis.set_ylabel("simple regret")
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(tasks) :]:
        axis.axis("off")
    axes.flat[0].legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def overhead(decisions: list[Decision], path: Path) -> None:
    """Seconds per decision, per daemon pass and per TPE ask against log entries, log-log."""
    figure, axis = plt.subplots(figsize=(6, 4.2))
    for measure in MEASURES:
        points = [(d.nodes, d.seconds[measure]) for d in decisions]
        points = [(n, s) for n, s in points if s is not None and s > 0]
        if points:
            axis.loglog(*zip(*points), marker="o", label=measure)
    axis.set_xlabel("entries in the log (finished trials for TPE)")
    axis.set_ylabel("seconds")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def utilisation(results: list[Utilisation], path: Path) -> None:
    """Busy fraction per slot for each loop."""
    figure, axis = plt.subplots(figsize=(6, 3.6))
    width = 0.8 / len(results)
    for index, result in enumerate(results):
        x = np.arange(len(result.per_slot)) + index * width
        axis.bar(x, result.per_slot, width, label=f"{result.loop} ({result.busy_fraction:.0%} overall)")
    axis.set_xticks(
        np.arange(len(results[0].per_slot)) + width * (len(results) - 1) / 2,
        [f"slot {i} (time_step {t})" for i, t in enumerate(TIME_STEPS)],
        fontsize=8,
    )
    axis.set_ylabel("busy fraction of the window")
    axis.set_ylim(0, 1.05)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)

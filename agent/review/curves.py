"""Learning curves in the review report: what each run said while it trained (memory/progress.py).

`learning_curves(files)` reads the progress file of every run in the log (bounded reads,
warnings kept for the report's problems) and picks one metric to draw: the spec's pruning
metric, else the objective's primary metric where the runs report it, else the metric most
runs report. `plot_curves(files, curves, path)` draws one panel per slot (x: fraction done,
y: that metric), one line per run coloured by its node, the best node's runs thick and
black, runs stopped early (failure kind ``pruned``) dashed and ending in a cross.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from agent.review.folder import ExplorationFiles  # noqa: E402
from memory.notebook import Entry  # noqa: E402
from memory.progress import ProgressPoint, read_run_progress  # noqa: E402

PRUNED_PREFIX = "pruned"  # the failure text of a run stopped early starts with this
MAX_PANELS = 9
DPI = 110
NODE_COLOURS = plt.get_cmap("tab20").colors


@dataclass
class Curve:
    """One run's progress: its entry and points."""

    entry: Entry
    points: list[ProgressPoint]

    @property
    def pruned(self) -> bool:
        return self.entry.failure.startswith(PRUNED_PREFIX)


@dataclass
class Curves:
    """Every run's curve that has points, the metric drawn, and what could not be read."""

    metric: str = ""
    runs: list[Curve] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def pick_metric(files: ExplorationFiles, runs: list[Curve]) -> str:
    """The pruning metric, else the primary metric if the runs report it, else the most reported one."""
    counts = Counter(name for run in runs for name in (run.points[-1].metrics if run.points else {}))
    if files.spec is not None:
        for name in (files.spec.exploration.pruning.metric, files.spec.objective.primary):
            if name and counts[name]:
                return name
    return counts.most_common(1)[0][0] if counts else ""


def learning_curves(files: ExplorationFiles) -> Curves:
    """The curves of the log's runs whose folders hold progress."""
    metrics_file = files.spec.trainer.metrics_file if files.spec is not None else ""
    found = Curves()
    for run in files.runs:
        read = read_run_progress(files.run_dir(run.entry.node_id), metrics_file)
        found.warnings += read.warnings
        if read.points:
            found.runs.append(Curve(run.entry, read.points))
    found.metric = pick_metric(files, found.runs)
    return found


def _panel(axes, curves: list[Curve], metric: str, best_ids: set[int]) -> None:
    for curve in curves:
        points = [(p.fraction, p.metrics[metric]) for p in curve.points if metric in p.metrics]
        if not points:
            continue
        xs, ys = zip(*points)
        best = curve.entry.node_id in best_ids or (curve.entry.is_replicate and curve.entry.parent in best_ids)
        style = {"color": "black", "linewidth": 2.2} if best else {"linewidth": 1.0, "alpha": 0.8}
        if not best:
            style["color"] = NODE_COLOURS[curve.entry.node_id % len(NODE_COLOURS)]
        axes.plot(xs, ys, linestyle="--" if curve.pruned else "-", **style)
        if curve.pruned:
            axes.scatter([xs[-1]], [ys[-1]], marker="x", color="#c0392b", s=40, zorder=4)


def plot_curves(files: ExplorationFiles, curves: Curves, path: Path) -> Path | None:
    """One panel per slot (at most `MAX_PANELS`); None when no run reported the metric."""
    if not curves.runs or not curves.metric:
        return None
    slots = sorted({curve.entry.slot for curve in curves.runs}, key=lambda slot: (slot is None, slot))[:MAX_PANELS]
    columns = min(3, len(slots))
    rows = -(-len(slots) // columns)
    best = files.tree.best
    best_ids = {best.id} if best is not None else set()
    figure, grid = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False, sharey=True)
    for axes, slot in zip(grid.flat, slots):
        members = [curve for curve in curves.runs if curve.entry.slot == slot]
        _panel(axes, members, curves.metric, best_ids)
        label = members[0].entry.slot_label or f"slot {slot}"
        axes.set_title(f"slot_{slot} ({label}): {len(members)} runs", fontsize=10)
        axes.set_xlabel("fraction of the run done")
        axes.set_ylabel(curves.metric)
        axes.grid(True, alpha=0.3)
        axes.set_xlim(0, 1)
    for axes in list(grid.flat)[len(slots) :]:
        axes.axis("off")
    handles = [
        Line2D([], [], color="black", linewidth=2.2, label="the best node's runs"),
        Line2D([], [], color="grey", linestyle="--", marker="x", markeredgecolor="#c0392b", label="stopped early"),
    ]
    figure.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, -0.02), ncol=2, frameon=False)
    figure.suptitle(f"{files.name}: {curves.metric} while training")
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return path

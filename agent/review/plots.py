"""The review figures (PNG): progress, parameter-vs-reward, stability map, and the tree (PNG + SVG).

Owns how a reviewed exploration looks. Every figure has a title, labelled axes (log
axes where the space is log-scaled), a legend, and fonts that stay readable at the
width REPORT.md embeds them (about 900 px). Failed runs have no reward: they are drawn
as crosses along the bottom edge, never as a reward of 0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from agent.review.folder import ExplorationFiles, Run  # noqa: E402
from memory.notebook import Entry  # noqa: E402
from slots.space import Parameter  # noqa: E402
from ucb.plot import plot_tree  # noqa: E402
from ucb.tree import Tree  # noqa: E402

DPI = 110
STYLE = {
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
SLOT_COLOURS = plt.get_cmap("tab10").colors
NO_SLOT_COLOUR = "#34495e"
FAILED_STYLE = {"marker": "x", "color": "#c0392b", "s": 40, "linewidths": 1.5}
OUTCOME_STYLES = {  # outcome -> (label, marker, colour)
    "ok": ("trained (finite metrics)", "o", "#27ae60"),
    "guard": ("guard failed (reward zeroed)", "^", "#f39c12"),
    "diverged": ("diverged (nan/inf)", "X", "#c0392b"),
}
OTHER_FAILURE = ("crashed / timed out / lost", "s", "#2c3e50")
BEST_RUN_LINE = {"color": "#7f8c8d", "linewidth": 1.2, "linestyle": "--", "label": "best single run so far"}
BEST_NODE_LINE = {"color": "black", "linewidth": 1.4}
BEST_NODE_LABEL = "best node so far{once} (pooled mean\nof its seeds; drops when a replicate scores lower)"
POINT, MIN_POINT = 36.0, 6.0  # scatter marker areas (points^2)
CROWD = 200  # above this many points, markers shrink and turn translucent
MAX_PANELS = 9
FEW_LABELS = 4  # choice labels that fit under a panel at a slight slant; more are slanted steeply
LOG_TICKS = ((0.5, tuple(range(1, 10))), (1.5, (1.0, 2.0, 3.0, 5.0)), (3.0, (1.0, 2.0, 5.0)))  # (decades below, subs)


def slot_colour(run: Run) -> str:
    slot = run.entry.slot
    return NO_SLOT_COLOUR if slot is None else SLOT_COLOURS[slot % len(SLOT_COLOURS)]


def _save(figure: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return path


def _slot_legend(runs: list[Run], with_failed: bool) -> list[Line2D]:
    names = {run.slot_name: slot_colour(run) for run in sorted(runs, key=lambda r: r.entry.slot or 0)}
    handles = [Line2D([], [], linestyle="", marker="o", color=colour, label=name) for name, colour in names.items()]
    if with_failed:
        handles.append(
            Line2D([], [], linestyle="", marker="x", color=FAILED_STYLE["color"], label="failed run (no reward)")
        )
    return handles


def _failures_at_bottom(axes, xs: list[float]) -> None:
    """Failed runs as crosses on the bottom edge (x in data units, y in axes units)."""
    if xs:
        axes.scatter(xs, [0.03] * len(xs), transform=axes.get_xaxis_transform(), zorder=4, **FAILED_STYLE)


def point_size(count: int) -> float:
    """Scatter marker area for ``count`` points: full size up to ``CROWD``, then shrinking to ``MIN_POINT``."""
    return max(MIN_POINT, POINT * math.sqrt(min(1.0, CROWD / max(count, 1))))


def progress(files: ExplorationFiles, path: Path) -> Path:
    """Reward per iteration coloured by slot, with the best single run and the best pooled node so far."""
    runs = files.runs
    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(figsize=(8.5, 4.4))
        scored = [run for run in runs if run.reward is not None]
        axes.scatter(
            [r.entry.iteration for r in scored],
            [r.reward for r in scored],
            c=[slot_colour(r) for r in scored],
            s=point_size(len(scored)),
            alpha=1.0 if len(scored) <= CROWD else 0.7,
            edgecolors="white",
            linewidths=0.5 if len(scored) <= CROWD else 0.0,
            zorder=3,
        )
        _failures_at_bottom(axes, [r.entry.iteration for r in runs if r.reward is None])
        handles = _slot_legend(runs, any(r.reward is None for r in runs))
        wanted = files.tree.replicates_wanted
        once = f", once it has {wanted} replicate{'s' * (wanted > 1)}" if wanted else ""
        node_line = BEST_NODE_LINE | {"label": BEST_NODE_LABEL.format(once=once)}
        for steps, style in ((best_run_so_far(files), BEST_RUN_LINE), (best_so_far(files), node_line)):
            if steps:
                axes.step(*zip(*steps), where="post", zorder=4, **style)
                handles.append(Line2D([], [], **style))
        axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        axes.set_xlabel("iteration (log entry)")
        axes.set_ylabel(files.reward_label)
        axes.set_title(f"{files.name}: reward per iteration ({len(runs)} runs, {len(runs) - len(scored)} failed)")
        return _save(figure, path)


def best_run_so_far(files: ExplorationFiles) -> list[tuple[int, float]]:
    """(iteration, highest reward of a single run among the entries up to it): never goes down."""
    steps, best = [], None
    for run in files.runs:
        if run.reward is not None and (best is None or run.reward > best):
            best = run.reward
        if best is not None:
            steps.append((run.entry.iteration, best))
    return steps


def best_so_far(files: ExplorationFiles) -> list[tuple[int, float]]:
    """(iteration, pooled mean of the best node among the entries up to it), as `Tree.best` saw it then.

    Can go down: a replicate that scores lower lowers its node's pooled mean. The tree
    grows one entry at a time (`Tree.add`); only the node an entry touches can overtake
    the best, so the best is compared with it alone, and searched again only when the
    best itself was touched or the tree had to be rebuilt (a hand-edited log: a node id
    written twice, a replicate logged before the node it replicates).
    """
    objective = files.spec.objective if files.spec else None
    wanted = files.tree.replicates_wanted
    tree = Tree.from_entries([], objective, files.metric, replicates_wanted=wanted)
    replicate_of: dict[int, int] = {}  # as the tree resolves replicates
    awaited: set[int] = set()  # nodes named by a replicate logged before them: their arrival re-pools it
    best, steps = None, []
    for count, entry in enumerate(files.entries, start=1):
        touched = replicate_of.get(entry.parent, entry.parent) if entry.is_replicate else entry.node_id
        if entry.is_replicate and touched not in tree.nodes:
            awaited.add(touched)
        arrived = not entry.is_replicate and touched in awaited
        if arrived or not tree.add(entry, objective, files.metric):
            awaited -= {touched} if arrived else set()
            tree = Tree.from_entries(files.entries[:count], objective, files.metric, replicates_wanted=wanted)
            replicate_of = _replicate_targets(tree, files.entries[:count])
            best = tree.best
            steps += [(entry.iteration, best.mean)] if best is not None else []
            continue
        if entry.is_replicate:
            replicate_of[entry.node_id] = touched
        if best is not None and touched == best.id:
            best = tree.best
        else:
            pair = [node for node in (best, tree.nodes.get(touched)) if node is not None]
            best = Tree(nodes={node.id: node for node in pair}, replicates_wanted=wanted).best
        if best is not None:
            steps.append((entry.iteration, best.mean))
    return steps


def _replicate_targets(tree: Tree, entries: list[Entry]) -> dict[int, int]:
    """Replicate id -> the node it pooled into, as `Tree.from_entries` resolved them."""
    targets: dict[int, int] = {}
    for entry in entries:
        if entry.is_replicate:
            target = targets.get(entry.parent, entry.parent)
            if target in tree.nodes and entry.node_id not in tree.nodes:
                targets[entry.node_id] = target
    return targets


def best_so_far_rebuilt(files: ExplorationFiles) -> list[tuple[int, float]]:
    """`best_so_far` the slow way, one tree per prefix of the log (the tests compare the two)."""
    objective = files.spec.objective if files.spec else None
    wanted = files.tree.replicates_wanted
    steps = []
    for count, entry in enumerate(files.entries, start=1):
        best = Tree.from_entries(files.entries[:count], objective, files.metric, replicates_wanted=wanted).best
        if best is not None:
            steps.append((entry.iteration, best.mean))
    return steps


def varied_parameters(files: ExplorationFiles) -> list[Parameter]:
    """Parameters that took at least two values in the runs, in the space's priority order."""
    found = []
    for parameter in files.space.by_priority():
        values = {repr(run.record.params[parameter.key]) for run in files.runs if parameter.key in run.record.params}
        if len(values) > 1:
            found.append(parameter)
    return found


def _positions(parameter: Parameter, runs: list[Run]) -> tuple[list[Run], list[float], list[str]]:
    """Runs that have the parameter, their x positions, and tick labels for a choice parameter."""
    present = [run for run in runs if parameter.key in run.record.params]
    values = [run.record.params[parameter.key] for run in present]
    if parameter.kind in ("float", "int"):
        return present, [float(v) for v in values], []
    labels = list(dict.fromkeys(str(v) for v in values))
    return present, [labels.index(str(v)) for v in values], labels


def _log_subs(axis) -> tuple[float, ...]:
    """Which multiples of 10^k get a labelled tick: denser when the data span few decades."""
    data = axis.axes.dataLim.intervalx if axis is axis.axes.xaxis else axis.axes.dataLim.intervaly
    low, high = min(data), max(data)
    decades = math.log10(high / low) if low > 0 and high > low else 0.0
    for span, subs in LOG_TICKS:
        if decades < span:
            return subs
    return (1.0,)


def _scale(axis, log: bool, label: str, ticks: list[float] | None = None) -> None:
    """A linear or log axis (call after plotting); log ticks are written as plain numbers (0.0002, 0.001).
    An axis with no positive finite value drawn on it (a panel of failures only) stays linear."""
    low, _ = axis.get_data_interval()
    log = log and math.isfinite(low) and low > 0
    axis.set_label_text(f"{label} (log scale)" if log else label)
    if log:
        set_scale = axis.axes.set_xscale if axis is axis.axes.xaxis else axis.axes.set_yscale
        set_scale("log")
        axis.set_major_locator(LogLocator(subs=_log_subs(axis)))
        axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.set_minor_formatter(NullFormatter())
    if ticks:
        axis.set_ticks(ticks)


def _parameter_axis(axes, parameter: Parameter, labels: list[str], short: str) -> None:
    if labels:
        axes.set_xticks(range(len(labels)))
        axes.set_xticklabels(labels, rotation=20 if len(labels) <= FEW_LABELS else 45, ha="right")
        axes.set_xlim(-0.5, len(labels) - 0.5)
        axes.set_xlabel(short)
    else:
        _scale(axes.xaxis, parameter.log, short)


def parameter_scatter(files: ExplorationFiles, path: Path) -> Path | None:
    """One panel per varied parameter: its value against the run's reward, coloured by slot."""
    parameters = varied_parameters(files)[:MAX_PANELS]
    if not parameters:
        return None
    columns = min(3, len(parameters))
    rows = math.ceil(len(parameters) / columns)
    with plt.rc_context(STYLE):
        figure, grid = plt.subplots(rows, columns, figsize=(4.0 * columns, 3.3 * rows), squeeze=False, sharey=True)
        for axes, parameter in zip(grid.flat, parameters):
            present, xs, labels = _positions(parameter, files.runs)
            scored = [(x, run) for x, run in zip(xs, present) if run.reward is not None]
            axes.scatter(
                [x for x, _ in scored],
                [run.reward for _, run in scored],
                c=[slot_colour(run) for _, run in scored],
                s=point_size(len(scored)) * 0.8,
                edgecolors="white",
                linewidths=0.4,
            )
            _failures_at_bottom(axes, [x for x, run in zip(xs, present) if run.reward is None])
            _parameter_axis(axes, parameter, labels, files.short(parameter.key))
        for axes in grid[:, 0]:
            axes.set_ylabel(files.reward_label)
        for axes in list(grid.flat)[len(parameters) :]:
            axes.set_visible(False)
        figure.legend(
            handles=_slot_legend(files.runs, any(r.reward is None for r in files.runs)),
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            ncol=5,
            frameon=False,
        )
        figure.suptitle(f"{files.name}: parameter value vs reward (each point is one run)")
        figure.tight_layout()
        return _save(figure, path)


def outcome_style(outcome: str) -> tuple[str, str, str]:
    return OUTCOME_STYLES.get(outcome, OTHER_FAILURE)


def slot_value(run: Run) -> float | None:
    """The slot's fixed value as a number (``homeostasis_time_step=16`` -> 16.0), if it is one."""
    _, _, text = run.entry.slot_label.partition("=")
    try:
        return float(text)
    except ValueError:
        return None


def _stability_axes(files: ExplorationFiles) -> list[tuple[str, bool, Callable[[Run], float | None]]]:
    """(label, log axis, value of a run) for x and y: the leading varied numeric parameters,
    the slot's fixed value taking the y axis when runs differ in it."""
    axes = []
    slot_values = {slot_value(run) for run in files.runs} - {None}
    for parameter in varied_parameters(files):
        if parameter.kind in ("float", "int"):
            axes.append(
                (
                    files.short(parameter.key),
                    parameter.log,
                    lambda run, key=parameter.key: _as_float(run.record.params.get(key)),
                )
            )
    if len(slot_values) > 1:
        label = files.runs[0].entry.slot_label.partition("=")[0] or "slot value"
        axes[1:1] = [
            (f"{label} (slot)", min(slot_values) > 0 and max(slot_values) / min(slot_values) >= 10, slot_value)
        ]
    return axes[:2]


def _as_float(value) -> float | None:
    return None if value is None else float(value)


def stability_map(files: ExplorationFiles, path: Path) -> Path | None:
    """Where training diverged, crashed or failed a guard, over two parameter axes."""
    chosen_axes = _stability_axes(files)
    if len(chosen_axes) < 2:
        return None
    (x_label, x_log, x_of), (y_label, y_log, y_of) = chosen_axes
    runs = [run for run in files.runs if x_of(run) is not None and y_of(run) is not None]
    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(figsize=(7.0, 5.0))
        for outcome in sorted({run.outcome for run in runs}, key=lambda o: o != "ok"):
            label, marker, colour = outcome_style(outcome)
            chosen = [run for run in runs if run.outcome == outcome]
            points = Counter((x_of(run), y_of(run)) for run in chosen)
            axes.scatter(
                [x for x, _ in points],
                [y for _, y in points],
                marker=marker,
                color=colour,
                s=[(70 if outcome != "ok" else 40) * math.sqrt(n) for n in points.values()],
                alpha=0.8,
                edgecolors="white",
                linewidths=0.5,
                label=f"{label}: {len(chosen)}",
            )
        _scale(axes.xaxis, x_log, x_label)
        _scale(axes.yaxis, y_log, y_label, sorted({y_of(run) for run in runs}) if y_of is slot_value else None)
        axes.legend(
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            frameon=False,
            title="outcome (runs)\nlarger marker: repeated point",
        )
        unstable = sum(1 for run in runs if run.outcome != "ok")
        axes.set_title(f"{files.name}: stability map ({unstable} of {len(runs)} runs unstable)")
        return _save(figure, path)


def tree(files: ExplorationFiles, path: Path, top: int | None = None, depth: int | None = None) -> Path:
    """The exploration tree, drawn by ucb/plot.py: ``path`` (PNG) and the SVG beside it.

    ``top``: only the best lineage and this many frontier nodes' lineages (default: ucb/plot.py's
    frontier, and other nodes up to its line budget); ``depth``: nodes deeper than this many
    mutations are summarised.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"c": files.spec.exploration.ucb_c} if files.spec else {}
    options |= {"top": top, "budget": 0} if top is not None else {}
    plot_tree(files.tree, path, title=f"{files.name}: exploration tree", depth=depth, **options)
    return path

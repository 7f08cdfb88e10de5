"""REPORT.md: an exploration's lab-meeting summary, with the figures it embeds.

Owns the report's sections and their markdown: the best node (reward with replicate
spread, config against the base, metrics, trainer plots), progress, the learning curves
(agent/review/curves.py: what the runs said while they trained, and the runs stopped early), the per-slot
comparison, parameter effects, the stability map, strategy outcomes, the tree, and
the problems met reading the log. Parts that need the spec, configs or run folders say
so when the folder does not have them. Figures go to ``<out>/report/``.
"""

from __future__ import annotations

import math
import shutil
import statistics
import time
from pathlib import Path

from agent.review import best as best_module
from agent.review import curves as curves_module
from agent.review import plots
from agent.review.best import Best
from agent.review.comparisons import GroupStats, by_slot, by_strategy
from agent.review.configs import diff_table
from agent.review.effects import EffectRow, effect_rows
from agent.review.folder import ALL_SLOTS, ExplorationFiles
from memory.atomic import write_text_atomic
from memory.errors import UcbxError
from memory.notebook import format_number

REPORT_NAME = "REPORT.md"
FIGURES_DIR = "report"
MAX_PROBLEMS = 20


def reward_text(value: float | None) -> str:
    return "failed" if value is None else f"{value:.3f}"


def _figure(title: str, path: Path | None, out: Path, missing: str) -> str:
    if path is None:
        return f"_{missing}_\n"
    return f"![{title}]({path.relative_to(out).as_posix()})\n"


# ---------------------------------------------------------------- sections


def header(files: ExplorationFiles) -> str:
    runs, nodes = len(files.runs), sum(1 for n in files.tree.nodes.values() if not n.in_flight)
    flying = sum(1 for n in files.tree.nodes.values() if n.in_flight)
    if files.spec is None:
        state = f"a bare log; rewards are the raw metric `{files.metric}` (larger is better)"
    else:
        budget = files.spec.exploration.budget
        state = (
            f"{runs} of {budget} iterations"
            + (f", {flying} running" if flying else "")
            + ("; finished" if runs >= budget else "; still running or stopped early")
        )
    return (
        f"# Exploration report: {files.name}\n\n"
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `ucbx report` from "
        f"`{files.log_path.name}`: {runs} runs on {nodes} nodes ({state}).\n"
    )


def _overall_effects(files: ExplorationFiles) -> list[EffectRow]:
    """One row per (parameter, direction): the all-slots row, or the only slot's row."""
    rows = effect_rows(files)
    pooled = {(row.parameter, row.direction) for row in rows if row.slot == ALL_SLOTS}
    return [row for row in rows if row.slot == ALL_SLOTS or (row.parameter, row.direction) not in pooled]


def glance_section(files: ExplorationFiles) -> str:
    """The answers first: best node, best slot, first converged result, strongest effects, failures."""
    lines = ["## At a glance\n"]
    best = files.tree.best
    if best is not None:
        lines.append(f"- best node: **{best.id}**, reward {best.mean:.3f} over {len(best.rewards)} run(s)")
    slots = by_slot(files)
    scored = [stats for stats in slots if stats.median is not None]
    if scored:
        top = max(scored, key=lambda stats: stats.median)
        lines.append(f"- best slot by median reward: **{top.name}** ({top.median:.3f} over {top.runs} runs)")
    converged = [stats.first_converged for stats in slots if stats.first_converged]
    if converged:
        first = min(converged, key=lambda run: run.entry.iteration)
        lines.append(
            f"- first converged result: iter {first.entry.iteration} (node {first.entry.node_id}, {first.slot_name})"
        )
    effects = sorted(_overall_effects(files), key=lambda row: row.mean_delta)
    for word, row in (
        ("most helpful", effects[-1] if effects and effects[-1].mean_delta > 0 else None),
        ("most harmful", effects[0] if effects and effects[0].mean_delta < 0 else None),
    ):
        if row is not None:
            lines.append(
                f"- {word} change: {row.parameter} {row.direction} ({row.mean_delta:+.3f} mean reward "
                f"change over {row.count} mutation(s))"
            )
    unstable = [run for run in files.runs if run.outcome != "ok"]
    kinds = ", ".join(
        f"{kind} {sum(1 for r in unstable if r.outcome == kind)}" for kind in sorted({r.outcome for r in unstable})
    )
    lines.append(f"- unstable runs: {len(unstable)} of {len(files.runs)}" + (f" ({kinds})" if kinds else ""))
    return "\n".join(lines) + "\n"


def best_section(files: ExplorationFiles, out: Path) -> str:
    try:
        best = best_module.best_node(files)
    except UcbxError as error:
        return f"## Best node\n\n_{error}_\n"
    node = best.node
    spread = (
        f" ± {node.spread:.3f} (standard deviation over {len(node.rewards)} seeds)"
        if len(node.rewards) > 1
        else " (one seed: no replicate yet)"
    )
    lines = [
        f"## Best node: {node.id}\n",
        f"- reward **{node.mean:.3f}**{spread}; class `{node.classification}`; {best.runs[0].slot_name}",
        "- lineage: root → " + " → ".join(best_module.lineage(files, node)),
        f"- `ucbx best --yaml` prints its full config; `ucbx show {node.id}` its entry and run folder\n",
        "### Metrics\n",
        metrics_table(files, best),
        "### Config against the base\n",
        base_section(files, node.id),
        "### Trainer plots\n",
        trainer_plots_section(files, node.id, out),
    ]
    return "\n".join(lines)


def metrics_table(files: ExplorationFiles, best: Best) -> str:
    """Every metric of the node's runs (node first, then replicates), objective metrics first."""
    first = []
    if files.spec:
        objective = files.spec.objective
        first = [objective.primary, *(t.metric for t in objective.terms), *(g.metric for g in objective.guards)]
    names = list(dict.fromkeys(first + [name for run in best.runs for name in run.entry.metrics]))
    heads = [f"node {run.entry.node_id}" + (" (replicate)" if run.entry.is_replicate else "") for run in best.runs]
    pooled = len(best.runs) > 1
    heads += ["mean ± sd"] if pooled else []
    lines = ["| metric | " + " | ".join(heads) + " |", "| --- |" + " --- |" * len(heads)]
    rows = [(name, [run.entry.metrics.get(name) for run in best.runs]) for name in names]
    rows.append(("**reward**", [run.reward for run in best.runs]))
    for name, values in rows:
        cells = ["-" if v is None else format_number(v) for v in values] + ([_mean_sd(values)] if pooled else [])
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _mean_sd(values: list[float | None]) -> str:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if len(finite) < 2:
        return "-"
    return f"{statistics.fmean(finite):.4g} ± {statistics.stdev(finite):.2g}"


def base_section(files: ExplorationFiles, node_id: int) -> str:
    rows = best_module.base_differences(files, node_id)
    if rows is None:
        return "_No spec or no config for this node in the folder: only the log's Config line is known._\n"
    return diff_table(rows, "base config", f"node {node_id}")


def trainer_plots_section(files: ExplorationFiles, node_id: int, out: Path) -> str:
    found = best_module.trainer_plots(files.run_dir(node_id))
    if not found:
        return (
            f"_No trainer plots: the folder has no {files.run_dir(node_id).relative_to(files.folder)}/tmp_training._\n"
        )
    lines = []
    for source in found:
        target = out / FIGURES_DIR / f"best_node_{source.parent.name}_{source.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        lines.append(f"![{source.stem}]({target.relative_to(out).as_posix()})")
    return "\n".join(lines) + "\n"


def progress_section(files: ExplorationFiles, out: Path) -> str:
    path = plots.progress(files, out / FIGURES_DIR / "progress.png")
    return (
        "## Progress\n\n"
        + _figure("reward per iteration", path, out, "")
        + "\nEach dot is one run, coloured by slot; crosses on the bottom edge are failed runs (no reward). "
        "The dashed line is the best single run so far; the solid line the best node so far (once it has the "
        "seed replicates the spec asks for), by the pooled mean of its seeds: it drops when a replicate of that "
        "node scores lower.\n"
    )


def curves_section(files: ExplorationFiles, out: Path) -> str:
    """The runs' learning curves per slot, and which runs were stopped early, at what fraction and why."""
    curves = curves_module.learning_curves(files)
    if not curves.runs:
        return ""
    path = curves_module.plot_curves(files, curves, out / FIGURES_DIR / "learning_curves.png")
    pruned = [curve for curve in curves.runs if curve.pruned]
    lines = [
        "## Learning curves\n",
        _figure(f"{curves.metric} while training", path, out, f"no run reported {curves.metric}"),
        f"\n{len(curves.runs)} of {len(files.runs)} runs reported progress (`progress.jsonl`); "
        f"{len(pruned)} were stopped early by `exploration.pruning`.\n",
    ]
    lines += [f"- node {c.entry.node_id} (iter {c.entry.iteration}): {c.entry.failure}" for c in pruned]
    shown = curves.warnings[:MAX_PROBLEMS]
    lines += [f"- progress file: {warning}" for warning in shown]
    return "\n".join(lines) + "\n"


def _first_converged(stats: GroupStats) -> str:
    if stats.first_converged is None:
        return "never"
    run = stats.first_converged
    return f"iter {run.entry.iteration} (run {stats.runs_to_first_converged} of the slot)"


def slot_section(files: ExplorationFiles) -> str:
    rows = by_slot(files)
    if not rows:
        return "## Slots\n\n_The log has no Slot: lines: no per-slot comparison._\n"
    lines = [
        "## Slots: which setting works best\n",
        "| slot | runs | failed | best reward (node) | median reward | converged | first converged |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for stats in rows:
        best = f"{stats.best_reward:.3f} ({stats.best.entry.node_id})" if stats.best else "-"
        median = "-" if stats.median is None else f"{stats.median:.3f}"
        lines.append(
            f"| {stats.name} | {stats.runs} | {stats.failed} | {best} | {median} | {stats.converged} | "
            f"{_first_converged(stats)} |"
        )
    return "\n".join(lines) + "\n\nRewards are per run (replicates count as runs); failed runs have no reward.\n"


def effects_section(files: ExplorationFiles, out: Path) -> str:
    rows = effect_rows(files)
    lines = [
        "## Parameter effects\n",
        "From the agent's mutation ledger: each one-parameter mutation, its reward minus its parent's pooled "
        "reward (a failed child counts as losing the parent's reward).\n",
    ]
    if rows:
        lines += [
            "| parameter | direction | slot | mutations | beat parent | classified failed | mean change in reward |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {r.parameter} | {r.direction} | {r.slot} | {r.count} | {r.improved} | {r.failed} | "
            f"{r.mean_delta:+.3f} |"
            for r in rows
        ]
    else:
        lines.append("_No one-parameter mutation with a scored parent yet._")
    path = plots.parameter_scatter(files, out / FIGURES_DIR / "parameters.png")
    lines += ["", _figure("parameter value vs reward", path, out, "No parameter took two values yet.")]
    return "\n".join(lines)


def stability_section(files: ExplorationFiles, out: Path) -> str:
    path = plots.stability_map(files, out / FIGURES_DIR / "stability.png")
    lines = ["## Stability\n", _figure("stability map", path, out, "Fewer than two numeric parameters varied.")]
    unstable = [run for run in files.runs if run.outcome != "ok"]
    if not unstable:
        return "\n".join(lines + ["No run diverged, crashed or failed a guard."]) + "\n"
    lines += ["| iter | node | slot | outcome | detail | config |", "| --- | --- | --- | --- | --- | --- |"]
    for run in unstable:
        non_finite = [f"{name}={format_number(v)}" for name, v in run.entry.metrics.items() if not math.isfinite(v)]
        detail = run.entry.failure or ", ".join(non_finite) or run.entry.observation
        config = ", ".join(f"{k}={v}" for k, v in run.entry.config.items())
        lines.append(
            f"| {run.entry.iteration} | {run.entry.node_id} | {run.slot_name} | {run.outcome} | "
            f"{_cell(detail)} | {_cell(config)} |"
        )
    return "\n".join(lines) + "\n"


def _cell(text: str, limit: int = 90) -> str:
    text = text.replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _strategy_cell(stats: GroupStats | None) -> str:
    if stats is None:
        return "-"
    runs = "1 run" if stats.runs == 1 else f"{stats.runs} runs"
    return f"{runs}, {stats.converged} conv., best {reward_text(stats.best_reward)}"


def strategy_section(files: ExplorationFiles) -> str:
    table = by_strategy(files)
    slots = sorted({run.slot_name for run in files.runs})
    columns = slots + [ALL_SLOTS] if len(slots) > 1 else slots
    lines = [
        "## Strategy outcomes\n",
        "Per code strategy in effect (a combined strategy counts for each part): runs, converged runs, best reward.\n",
        "| strategy | " + " | ".join(columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for name, cells in table.items():
        row = [_strategy_cell(cells.get(column)) for column in columns] if cells else ["not tried"] * len(columns)
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def tree_section(files: ExplorationFiles, out: Path) -> str:
    path = plots.tree(files, out / FIGURES_DIR / "tree.png")
    svg = path.with_suffix(".svg").relative_to(out).as_posix()
    return (
        "## Exploration tree\n\n"
        + _figure("exploration tree", path, out, "")
        + f"\nZoomable: [{svg}]({svg}). One line per node, indented under its parent; the best node is ringed "
        "in gold with its lineage in gold, the top UCB nodes in blue; crosses are failed runs. In a tree too "
        "large for the figure, a dotted edge is a chain of single-child nodes collapsed into one, labelled with "
        "the changes along it, and grey lines summarise the subtrees left out. `ucbx tree` prints the same in "
        "the terminal.\n"
    )


def problems_section(files: ExplorationFiles) -> str:
    problems = files.problems + files.tree.problems
    if not problems:
        return ""
    shown = [f"- {problem}" for problem in problems[:MAX_PROBLEMS]]
    more = [f"- … and {len(problems) - MAX_PROBLEMS} more (`ucbx check`)"] if len(problems) > MAX_PROBLEMS else []
    return "## Problems reading the log\n\n" + "\n".join(shown + more) + "\n"


def write_report(files: ExplorationFiles, out: Path) -> Path:
    """Write ``out/REPORT.md`` and its figures; return the report's path."""
    figures = out / FIGURES_DIR
    if figures.is_dir():
        shutil.rmtree(figures)
    figures.mkdir(parents=True)
    parts = [
        header(files),
        glance_section(files),
        best_section(files, out),
        progress_section(files, out),
        curves_section(files, out),
        slot_section(files),
        effects_section(files, out),
        stability_section(files, out),
        strategy_section(files),
        tree_section(files, out),
        problems_section(files),
    ]
    path = out / REPORT_NAME
    write_text_atomic(path, "\n".join(part for part in parts if part))
    return path
